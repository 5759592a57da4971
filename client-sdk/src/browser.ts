/**
 * Entry of the browser IIFE bundle (`dist/handoff.iife.js`, socket.io-client inside): defines the
 * global `Handoff`, the client class, with the rest of the SDK on it as static members
 * (`Handoff.HandoffError`, `Handoff.SDK_ERRORS`, `Handoff.DEFAULTS`, …).
 *
 *   <script src="/sdk/handoff.iife.js"></script>
 *   <script> const handoff = new Handoff({ url: location.origin }); </script>
 */
import * as sdk from './index.js';

const { Handoff, ...rest } = sdk;
(globalThis as { Handoff?: unknown }).Handoff = Object.assign(Handoff, rest);
