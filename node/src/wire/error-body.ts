/**
 * The body of a refusal in PSP's two request/response protocols: link RPC
 * ERROR cells (link/rpc.ts, docs/spec/link.md) and stream-RPC ERROR messages
 * (onion/stream-rpc.ts, docs/spec/onion.md). One layout, one truncation rule:
 *
 *   code (1) ‖ detail-len (1) ‖ detail (printable ASCII, ≤ 32) ‖ text-len (2) ‖ text (UTF-8)
 *
 * `code` is the refusal's kind by number, in the protocol's own table;
 * `detail` the refusing service's own reason (e.g. a DhtError kind); `text`
 * a message for people, cut to the protocol's byte budget at a character
 * boundary, never inside one.
 *
 * Trusts nothing: a body too short for its detail, or with a detail longer
 * than 32 bytes, does not decode; the detail read is kept printable ASCII; a
 * text length past the end is cut to the bytes that are there.
 */
import { printableAscii, utf8Prefix } from "../base/text.js";

/** Longest detail (the service's reason). */
export const ERROR_DETAIL_MAX_LEN = 32;
/** code, detail-len and text-len. */
export const ERROR_BODY_FIXED_LEN = 4;

export interface ErrorBody {
  code: number;
  detail: string;
  text: string;
}

const ascii = new TextEncoder();
const utf8 = new TextDecoder();

/** Encodes `body` with its text cut to at most `maxTextBytes` of UTF-8. */
export function encodeErrorBody(body: ErrorBody, maxTextBytes: number): Uint8Array {
  const detail = ascii.encode(printableAscii(body.detail).slice(0, ERROR_DETAIL_MAX_LEN));
  const text = utf8Prefix(body.text, Math.min(maxTextBytes, 0xffff));
  const out = new Uint8Array(ERROR_BODY_FIXED_LEN + detail.length + text.length);
  out[0] = body.code;
  out[1] = detail.length;
  out.set(detail, 2);
  out[2 + detail.length] = text.length >>> 8;
  out[3 + detail.length] = text.length & 0xff;
  out.set(text, ERROR_BODY_FIXED_LEN + detail.length);
  return out;
}

/** The fields of an error body, or undefined when it does not decode. */
export function decodeErrorBody(bytes: Uint8Array): ErrorBody | undefined {
  const detailLen = bytes[1] ?? 0;
  if (detailLen > ERROR_DETAIL_MAX_LEN || bytes.length < ERROR_BODY_FIXED_LEN + detailLen) return undefined;
  const textStart = ERROR_BODY_FIXED_LEN + detailLen;
  const textLen = ((bytes[2 + detailLen] as number) << 8) | (bytes[3 + detailLen] as number);
  return {
    code: bytes[0] as number,
    detail: printableAscii(utf8.decode(bytes.subarray(2, 2 + detailLen))),
    text: utf8.decode(bytes.subarray(textStart, Math.min(bytes.length, textStart + textLen))),
  };
}
