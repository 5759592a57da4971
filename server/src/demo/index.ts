export { DEMO_CSP, PUBLIC_DIR, SDK_BUNDLE, demoPages, type DemoPagesOptions } from './demo-pages.js';
