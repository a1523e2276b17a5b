/**
 * The id alphabet of protocol.md section 2: game, server, tag, tag value and
 * player ids are 1 to 128 bytes of [A-Za-z0-9._~:@=-]. Ids become topic levels,
 * so anything else (a "/", "+" or "#") would reach the wrong topics.
 */
const ID = /^[A-Za-z0-9._~:@=-]{1,128}$/;

/** isId tells whether s is a string in the id alphabet. */
export function isId(s: unknown): s is string {
  return typeof s === 'string' && ID.test(s);
}

/** isObject tells whether x is a JSON object (not null, not an array). */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** own reads a member of a JSON object, never one inherited from its prototype. */
export function own(o: Record<string, unknown> | undefined, key: string): unknown {
  return o !== undefined && Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}
