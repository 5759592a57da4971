/**
 * The one line `main.ts` prints when the HTTP server cannot listen for a reason the operator can
 * fix (the port is taken, or needs privileges), instead of a raw EADDRINUSE / EACCES stack.
 */

/** The message for a listen error the operator can fix, or null for any other error (rethrow it). */
export function listenErrorLine(err: unknown, port: number, host: string): string | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE') {
    return `handoff: port ${port} is in use (another process listens on ${host}:${port}); stop it or set PORT to a free port`;
  }
  if (code === 'EACCES') {
    return `handoff: not allowed to listen on port ${port} (${host}:${port}; ports below 1024 need privileges); set PORT to 1024 or above`;
  }
  if (code === 'EADDRNOTAVAIL') {
    return `handoff: cannot listen on ${host}:${port}: HOST is not an address of this machine`;
  }
  return null;
}
