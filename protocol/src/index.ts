export * from './states.js';
export * from './errors.js';
export * from './state-object.js';
export * from './events.js';
