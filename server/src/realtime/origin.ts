import type { IncomingMessage } from 'node:http';

/**
 * Origin allowlist for both socket endpoints (contract §5): no Origin header (native apps,
 * servers) is allowed; otherwise the Origin must be the server's own (same host as the request,
 * or PUBLIC_URL's origin) or listed in ALLOWED_ORIGINS (`*` allows any).
 */
export function originAllowed(req: IncomingMessage, allowed: readonly string[], publicUrl: string | null): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  if (publicUrl && safeOrigin(publicUrl) === origin) return true;
  const host = req.headers.host;
  if (!host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function safeOrigin(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}
