export { DEMO_CSP, PUBLIC_DIR, SDK_BUNDLE, demoPages, demoPagesEnabled, type DemoPagesOptions } from './demo-pages.js';
