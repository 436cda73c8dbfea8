/**
 * SENDME flow-control windows (tor-spec 7.3, 7.4), counted in DATA cells.
 *
 * Owns window arithmetic for one circuit hop or one stream. The sender's
 * package window starts at `start` and drops by one per DATA cell sent; a
 * SENDME raises it by `increment`. The receiver's deliver window drops by one
 * per DATA cell received; each time `increment` cells have been delivered the
 * receiver owes a SENDME, and its deliver window rises when it sends one.
 * A receiver that cannot consume (a paused service) withholds SENDMEs, which
 * is what pushes back on the sender. A DATA cell that
 * arrives with the deliver window at zero is a protocol violation (the sender
 * ignored the window), as is a SENDME that would raise the package window
 * above `start` (a forged or replayed SENDME).
 */

export interface WindowParams {
  start: number;
  increment: number;
}

export type DeliverResult = "ok" | "overrun";

export class FlowWindow {
  private packageWindow: number;
  private deliverWindow: number;

  constructor(readonly params: WindowParams) {
    this.packageWindow = params.start;
    this.deliverWindow = params.start;
  }

  /** DATA cells that may still be sent before a SENDME is needed. */
  get canPackage(): number {
    return this.packageWindow;
  }

  /** Records one DATA cell sent; false (and no change) when the window is closed. */
  packaged(): boolean {
    if (this.packageWindow <= 0) return false;
    this.packageWindow--;
    return true;
  }

  /** Records a SENDME received; false when it would exceed the starting window (protocol violation). */
  sendmeReceived(): boolean {
    if (this.packageWindow + this.params.increment > this.params.start) return false;
    this.packageWindow += this.params.increment;
    return true;
  }

  /** Records one DATA cell received; "overrun" (and no change) when the window was already closed. */
  delivered(): DeliverResult {
    if (this.deliverWindow <= 0) return "overrun";
    this.deliverWindow--;
    return "ok";
  }

  /** True when `increment` cells have been delivered since the last SENDME we sent. */
  get sendmeDue(): boolean {
    return this.deliverWindow <= this.params.start - this.params.increment;
  }

  /** Records a SENDME we sent: the sender may now send `increment` more cells. */
  sendmeSent(): void {
    this.deliverWindow += this.params.increment;
  }
}
