/**
 * Watches the raw client byte stream of one WebSocket and reports the first data frame over the frame limit, or the
 * first fragment that takes its message over the message limit.
 *
 * `ws` only limits whole messages (`maxPayload`), while API Gateway also limits each frame (32 KB). Reading just the
 * frame headers alongside `ws` gives a real per-frame check, fragments included, without touching payload bytes, and
 * it trips on the header, before `ws` has buffered the payload.
 */
export class FrameSizeMonitor {
  private readonly header = Buffer.alloc(14);
  private headerLength = 0;
  private headerNeeded = 2;
  private payloadRemaining = 0;
  private messageBytes = 0;
  private tripped = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly maxMessageBytes: number,
  ) {}

  /** Feeds the next chunk; returns true once a limit has been exceeded (and stops parsing). */
  feed(chunk: Buffer): boolean {
    if (this.tripped) return true;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.payloadRemaining > 0) {
        const skip = Math.min(this.payloadRemaining, chunk.length - offset);
        this.payloadRemaining -= skip;
        offset += skip;
        continue;
      }
      const take = Math.min(this.headerNeeded - this.headerLength, chunk.length - offset);
      chunk.copy(this.header, this.headerLength, offset, offset + take);
      this.headerLength += take;
      offset += take;
      if (this.headerLength === 2) this.headerNeeded = this.fullHeaderLength();
      if (this.headerLength < this.headerNeeded) continue;
      if (this.completeHeader()) {
        this.tripped = true;
        return true;
      }
    }
    return false;
  }

  private fullHeaderLength(): number {
    const second = this.header.readUInt8(1);
    const masked = (second & 0x80) !== 0;
    const length7 = second & 0x7f;
    const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    return 2 + extended + (masked ? 4 : 0);
  }

  /** Resets for the next frame; returns true when the finished header breaks a limit. */
  private completeHeader(): boolean {
    const opcode = this.header.readUInt8(0) & 0x0f;
    const length7 = this.header.readUInt8(1) & 0x7f;
    let payloadLength = length7;
    if (length7 === 126) payloadLength = this.header.readUInt16BE(2);
    else if (length7 === 127) payloadLength = Number(this.header.readBigUInt64BE(2));
    this.headerLength = 0;
    this.headerNeeded = 2;
    this.payloadRemaining = payloadLength;
    // Opcodes 0x0-0x2 are continuation, text and binary; control frames are capped at 125 bytes by the protocol.
    if (opcode > 0x2) return false;
    this.messageBytes = opcode === 0x0 ? this.messageBytes + payloadLength : payloadLength;
    return payloadLength > this.maxFrameBytes || this.messageBytes > this.maxMessageBytes;
  }
}
