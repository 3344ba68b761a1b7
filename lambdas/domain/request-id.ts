/** The `requestId` an answer echoes: the frame's own, when it sent one (PROTOCOL.md: every answer carries it). */
export function requestIdOf(frame: { requestId?: string | undefined }): { requestId?: string } {
  return frame.requestId === undefined ? {} : { requestId: frame.requestId };
}
