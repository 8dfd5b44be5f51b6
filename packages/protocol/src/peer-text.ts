/**
 * Peer text in logs and errors. Whatever a peer chose (a method name, a map key, a header) may hold newlines, ANSI
 * escapes or bidi controls that forge log lines or hide text; and it may be long. Before such text goes into a log
 * line or an error message it is bounded and every control character is written as an escape.
 */

// C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides and isolates, and lone
// surrogates (a half of a pair with no other half).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** DEFAULT_PEER_TEXT_LENGTH is how many characters of one piece of peer text a message quotes by default. */
export const DEFAULT_PEER_TEXT_LENGTH = 120;

/**
 * escapePeerText bounds `text` to `max` characters (marking the cut with "…(N chars)") and writes every control,
 * bidi and lone-surrogate character as \uXXXX, so that the result is one printable line.
 */
export function escapePeerText(text: string, max = DEFAULT_PEER_TEXT_LENGTH): string {
  const cut = text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
  return cut.replace(UNSAFE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** quotePeerText is escapePeerText in double quotes: the form log lines and error messages use. */
export function quotePeerText(text: string, max = DEFAULT_PEER_TEXT_LENGTH): string {
  return `"${escapePeerText(text, max).replace(/"/g, '\\"')}"`;
}

/**
 * lowerCaseHeaderName folds A-Z to a-z and leaves every other character as it is, as HTTP compares field names.
 * Unicode case folding could change a name's byte length (U+0130) and would fold names HTTP keeps apart.
 */
export function lowerCaseHeaderName(name: string): string {
  return /[A-Z]/.test(name) ? name.replace(/[A-Z]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 32)) : name;
}
