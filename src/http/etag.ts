/** An order's entity tag: its version, which every change bumps (the JSON is a function of it). */
export function etagOf(version: number): string {
  return `"${version}"`;
}

const TAG = /\s*(W\/)?"([^"]*)"\s*(?:,|$)/y;

/**
 * Whether an If-Match (strong comparison) or If-None-Match (weak comparison) header names the
 * current version; `*` names any. A header that is not a list of entity tags names nothing.
 */
export function namesVersion(header: string, version: number, comparison: 'strong' | 'weak'): boolean {
  if (header.trim() === '*') return true;
  const current = String(version);
  TAG.lastIndex = 0;
  let match: RegExpExecArray | null;
  // Sticky: each tag must follow the last; anything else (or the end) stops the loop.
  while ((match = TAG.exec(header)) !== null) {
    const weak = match[1] !== undefined;
    if (match[2] === current && (comparison === 'weak' || !weak)) return true;
  }
  return false;
}
