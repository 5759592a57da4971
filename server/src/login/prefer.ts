/** The preferences of an RFC 7240 `Prefer` header that Handoff honours. */
export interface Preferences {
  respondAsync: boolean;
  /** Seconds the client will wait for a synchronous answer (`wait=N`), if given. */
  wait?: number;
}

/** Parse `Prefer` (one header or several): `respond-async, wait=5`. Unknown preferences are ignored. */
export function parsePrefer(header: string | string[] | undefined): Preferences {
  const prefs: Preferences = { respondAsync: false };
  const items = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  for (const item of items) {
    const [token] = item.split(';');
    const [rawName, rawValue] = token.split('=');
    const name = rawName?.trim().toLowerCase();
    const value = rawValue?.trim().replace(/^"|"$/g, '');
    if (name === 'respond-async') prefs.respondAsync = true;
    else if (name === 'wait' && value && /^\d{1,6}$/.test(value)) prefs.wait = Number(value);
  }
  return prefs;
}
