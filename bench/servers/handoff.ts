/**
 * Runs the real Handoff server entry point (`server/src/main.ts`, unchanged) with the bench's IPC
 * control channel (forced GC + memory report) next to it. The bench picks PORT beforehand, since
 * main.ts announces its URL only at LOG_LEVEL=info and the bench runs it at `warn`.
 */
import { ready } from './ipc.js';

await import('../../server/src/main.js');
ready(`http://127.0.0.1:${process.env.PORT}`);
