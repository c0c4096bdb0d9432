// A drawing surface for digits: dark ink on white, pointer events (mouse, pen, touch),
// strokes kept as point lists so the last one can be undone. A sample digit can be
// laid underneath as a picture; strokes then draw over it.

const INK = "#111";
const PAPER = "#fff";

export class Sketchpad {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onStroke?: () => void, onDraw?: () => void, lineWidth?: number}} options
   */
  constructor(canvas, { onStroke = () => {}, onDraw = () => {}, lineWidth = 0.075 } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.strokes = [];
    this.backdrop = null; // an image drawn under the strokes (a sample digit)
    this.current = null;
    this.onStroke = onStroke;
    this.onDraw = onDraw;
    this.lineWidth = lineWidth * canvas.width; // relative to the canvas, like a thick marker
    canvas.addEventListener("pointerdown", (e) => this.#down(e));
    canvas.addEventListener("pointermove", (e) => this.#move(e));
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, (e) => this.#up(e));
    this.redraw();
  }

  get isEmpty() {
    return this.strokes.length === 0 && this.backdrop === null;
  }

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * this.canvas.width,
      ((event.clientY - rect.top) / rect.height) * this.canvas.height,
    ];
  }

  #down(event) {
    if (event.button !== undefined && event.button !== 0) return;
    event.preventDefault();
    try {
      this.canvas.setPointerCapture?.(event.pointerId); // keep the stroke when a finger slides off the pad
    } catch {
      // a pointer the browser no longer tracks: the stroke still draws, only uncaptured
    }
    this.current = [this.#point(event)];
    this.strokes.push(this.current);
    this.#dot(this.current[0]);
    this.onDraw();
  }

  #move(event) {
    if (!this.current) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) this.current.push(this.#point(e));
    // repaint whole strokes: segment by segment, the overlapping round caps leave seams
    this.redraw();
    this.onDraw();
  }

  #up() {
    if (!this.current) return;
    this.current = null;
    this.onStroke();
  }

  #dot([x, y]) {
    const { ctx } = this;
    ctx.fillStyle = INK;
    ctx.beginPath();
    ctx.arc(x, y, this.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  #path(points) {
    const { ctx } = this;
    ctx.strokeStyle = INK;
    ctx.lineWidth = this.lineWidth;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...points[0]);
    for (const point of points.slice(1)) ctx.lineTo(...point);
    ctx.stroke();
  }

  redraw() {
    const { ctx, canvas } = this;
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (this.backdrop) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.backdrop, 0, 0, canvas.width, canvas.height);
    }
    for (const stroke of this.strokes) {
      if (stroke.length === 1) this.#dot(stroke[0]);
      else this.#path(stroke);
    }
  }

  clear() {
    this.strokes = [];
    this.backdrop = null;
    this.current = null;
    this.redraw();
  }

  /** Removes the last stroke, or the sample digit when no stroke is left. */
  undo() {
    if (this.strokes.length) this.strokes.pop();
    else this.backdrop = null;
    this.redraw();
  }

  /** Lays a picture (canvas or image, dark ink on white) under the strokes. */
  setBackdrop(image) {
    this.strokes = [];
    this.backdrop = image;
    this.redraw();
  }

  toDataURL() {
    return this.canvas.toDataURL("image/png");
  }
}
