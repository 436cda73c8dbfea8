/**
 * The frozen vectors of the media path (test/vectors/stream-media.json): the
 * frozen bytes decode to the sample frames, the proof signature verifies over
 * the frozen transcript, the frozen sealed chunk opens to the input media, the
 * frozen ticket decodes to the inputs, and today's encoders give the same
 * bytes (a wire change fails here until scripts/gen-vectors.ts is re-run).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ed25519Verify } from "../../node/src/crypto/ed25519.js";
import { StreamCipher } from "../../node/src/stream/crypto.js";
import { FrameReader } from "../../node/src/stream/frames.js";
import { decodeTicket } from "../../node/src/stream/ticket.js";
import { streamFrameSamples, streamInputs, streamMediaVector } from "../vectors/stream-media-formats.js";

const vector = JSON.parse(readFileSync(new URL("../vectors/stream-media.json", import.meta.url), "utf8")) as ReturnType<typeof streamMediaVector> & {
  frames: { name: string; hex: string }[];
  proofTranscript: string;
  proofSignature: string;
  nodeIdentity: string;
  sealedChunk: string;
  ticket: string;
};
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

describe("stream media vectors", () => {
  it("frozen frames decode to the samples", () => {
    const samples = streamFrameSamples();
    expect(vector.frames.map((f) => f.name)).toEqual(samples.map((s) => s.name));
    for (const [i, f] of vector.frames.entries()) expect(new FrameReader().push(unhex(f.hex))).toEqual([samples[i]!.frame]);
  });

  it("the frozen proof verifies, the frozen chunk opens, the frozen ticket decodes", () => {
    expect(ed25519Verify(unhex(vector.nodeIdentity), unhex(vector.proofTranscript), unhex(vector.proofSignature))).toBe(true);
    const opened = new StreamCipher(unhex(streamInputs.streamId), unhex(streamInputs.streamKey)).open(BigInt(streamInputs.seq), unhex(vector.sealedChunk));
    expect(Buffer.from(opened.media).toString("hex")).toBe(streamInputs.media);
    expect(opened.producedAt).toBe(streamInputs.producedAt);
    const ticket = decodeTicket(vector.ticket);
    expect(Buffer.from(ticket.streamKey).toString("hex")).toBe(streamInputs.streamKey);
    expect(ticket.port).toBe(streamInputs.port);
  });

  it("today's encoders give the frozen bytes", () => {
    expect(streamMediaVector()).toEqual(vector);
  });
});
