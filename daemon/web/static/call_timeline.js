// The call view's timeline: both tracks, what was said and each turn's voice-to-voice on one time axis (SVG).
// Data: /calls/<id>/timeline.json (daemon/web/pages/call_figures.py). No framework, nothing from the network.
const SVG = "http://www.w3.org/2000/svg";
const LANES = [  // top to bottom; heights in px
  { key: "axis", h: 26 },
  { key: "caller-wave", h: 64, label: "Caller", role: "caller" },
  { key: "caller-words", h: 34, role: "caller" },
  { key: "turns", h: 64, label: "Turns" },
  { key: "secretary-words", h: 34, role: "secretary" },
  { key: "secretary-wave", h: 64, label: "Secretary", role: "secretary" },
];
const BOTTOM = 8;
const TICKS_S = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300];
const MIN_PX_PER_S = 4, MAX_PX_PER_S = 600, READABLE_PX_PER_S = 20, ZOOM_STEP = 1.6;
const CHAR_PX = 7.2;  // 12 px DejaVu Sans, on average (a little over)

function el(name, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function titled(node, text) {
  el("title", {}, node, text);
  return node;
}

const fmtS = (s) => `${s.toFixed(1)} s`;
const fmtMs = (ms) => (ms === null || ms === undefined ? "—" : `${Math.round(ms)} ms`);

function clock(s) {
  const m = Math.floor(s / 60), rest = s - m * 60;
  const whole = Number.isInteger(rest) ? String(rest).padStart(2, "0") : rest.toFixed(1).padStart(4, "0");
  return `${m}:${whole}`;
}

function laneTops() {
  const tops = {};
  let y = 0;
  for (const lane of LANES) { tops[lane.key] = y; y += lane.h; }
  return { tops, height: y + BOTTOM };
}

function fit(text, px) {
  const chars = Math.floor(px / CHAR_PX);
  if (chars < 3) return "";
  return text.length <= chars ? text : `${text.slice(0, chars - 1).trimEnd()}…`;
}

function grade(ms, targets) {
  if (ms === null || ms === undefined) return "none";
  return ms <= targets.p50_ms ? "good" : ms <= targets.p95_ms ? "fair" : "slow";
}

class Timeline {
  constructor(host, data) {
    this.host = host;
    this.data = data;
    this.duration = Math.max(1, data.duration_s);
    this.audio = ["caller", "secretary"].map((t) => document.getElementById(`audio-${t}`)).filter(Boolean);
    host.textContent = "";
    const row = document.createElement("div");
    row.className = "timeline-row";
    this.labels = el("svg", { class: "timeline-labels", "aria-hidden": "true" }, row);
    this.pane = document.createElement("div");
    this.pane.className = "timeline-pane";
    row.appendChild(this.pane);
    host.appendChild(row);
    this.drawLabels();  // first: the pane's width depends on the label column
    this.pxPerS = Math.max(this.fitPxPerS(), READABLE_PX_PER_S);
    this.draw();
    for (const audio of this.audio) audio.addEventListener("timeupdate", () => this.movePlayhead(audio.currentTime));
  }

  fitPxPerS() {
    return Math.max(MIN_PX_PER_S, (this.pane.clientWidth - 12) / this.duration);
  }

  zoom(factor) {
    const centre = (this.pane.scrollLeft + this.pane.clientWidth / 2) / this.pxPerS;
    this.pxPerS = factor === null ? this.fitPxPerS() : Math.min(MAX_PX_PER_S, Math.max(MIN_PX_PER_S, this.pxPerS * factor));
    this.draw();
    this.pane.scrollLeft = Math.max(0, centre * this.pxPerS - this.pane.clientWidth / 2);
  }

  x(s) { return 6 + s * this.pxPerS; }

  drawLabels() {
    const { tops, height } = laneTops();
    this.labels.setAttribute("width", "76");
    this.labels.setAttribute("height", String(height));
    for (const lane of LANES) {
      if (!lane.label) continue;
      const y = tops[lane.key] + lane.h / 2 + (lane.key === "turns" ? 0 : 4);
      el("text", { x: 70, y, class: `lane-label ${lane.role || ""}`, "text-anchor": "end" }, this.labels, lane.label);
    }
  }

  draw() {
    const { tops, height } = laneTops();
    const width = Math.ceil(this.x(this.duration) + 8);
    const svg = el("svg", {
      class: "timeline-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "tl-title tl-desc",
    });
    const turns = this.data.turns;
    el("title", { id: "tl-title" }, svg, `Call timeline, ${fmtS(this.duration)}`);
    el("desc", { id: "tl-desc" }, svg, `${turns.length} answered turn(s); voice-to-voice ${turns.map((t) => fmtMs(t.voice_to_voice_ms)).join(", ") || "none"}.`);
    for (const lane of LANES) {
      if (lane.key.endsWith("wave")) el("rect", { x: 0, y: tops[lane.key], width, height: lane.h, class: `lane-bg ${lane.role}` }, svg);
    }
    this.drawAxis(svg, tops, height, width);
    for (const role of ["caller", "secretary"]) {
      this.drawTrack(svg, role, tops[`${role}-wave`], LANES.find((l) => l.key === `${role}-wave`).h);
      this.drawWords(svg, role, tops[`${role}-words`], 34);
    }
    this.drawTurns(svg, tops.turns, tops);
    this.drawBargeIns(svg, height);
    this.playhead = el("line", { x1: this.x(0), x2: this.x(0), y1: 0, y2: height, class: "playhead", visibility: "hidden" }, svg);
    svg.addEventListener("click", (event) => this.seek(event, svg));
    this.pane.replaceChildren(svg);
    this.svg = svg;
  }

  drawAxis(svg, tops, height, width) {
    const step = TICKS_S.find((s) => s * this.pxPerS >= 64) || TICKS_S[TICKS_S.length - 1];
    const axis = el("g", { class: "axis" }, svg);
    el("line", { x1: 0, x2: width, y1: 25.5, y2: 25.5, class: "axis-line" }, axis);
    for (let s = 0; s <= this.duration + 1e-6; s += step) {
      const x = this.x(s);
      el("line", { x1: x, x2: x, y1: 20, y2: height - BOTTOM, class: "grid-line" }, axis);
      if (x + 34 < width) el("text", { x: x + 3, y: 15, class: "tick" }, axis, clock(Math.round(s * 10) / 10));
    }
  }

  drawTrack(svg, role, top, h) {
    const mid = top + h / 2, half = h / 2 - 4;
    const g = el("g", { class: `track ${role}` }, svg);
    for (const u of this.data.utterances.filter((u) => u.role === role)) {
      const r = el("rect", { x: this.x(u.start_s), y: top + 3, width: Math.max(2, (u.end_s - u.start_s) * this.pxPerS), height: h - 6, rx: 4, class: "speech" }, g);
      titled(r, `${role} speaks ${fmtS(u.start_s)}–${fmtS(u.end_s)}`);
    }
    const track = this.data.tracks[role];
    if (!track || !track.available) {
      el("line", { x1: this.x(0), x2: this.x(this.duration), y1: mid, y2: mid, class: "baseline" }, g);
      const note = el("text", { x: this.x(0) + 6, y: top + 14, class: "placeholder" }, g, `No waveform: ${track ? track.reason : "no recording"} — speech regions from the transcript`);
      titled(note, track ? track.reason : "no recording");
      return;
    }
    // one column per pixel at most: the loudest peak of the ones it covers
    const perPx = Math.max(1, Math.floor(1 / (track.step_s * this.pxPerS)));
    const points = [];
    for (let i = 0; i < track.peaks.length; i += perPx) {
      let level = 0;
      for (let j = i; j < Math.min(track.peaks.length, i + perPx); j++) level = Math.max(level, track.peaks[j]);
      points.push([this.x(i * track.step_s), (level / 100) * half]);
    }
    points.push([this.x(track.peaks.length * track.step_s), 0]);
    const upper = points.map(([x, a]) => `${x.toFixed(1)},${(mid - a).toFixed(1)}`);
    const lower = points.reverse().map(([x, a]) => `${x.toFixed(1)},${(mid + a).toFixed(1)}`);
    titled(el("path", { d: `M${upper.join("L")}L${lower.join("L")}Z`, class: "wave" }, g), `${role} track waveform`);
  }

  drawWords(svg, role, top, h) {
    const g = el("g", { class: `words ${role}` }, svg);
    const said = this.data.utterances.filter((u) => u.role === role);
    said.forEach((u, i) => {
      const x = this.x(u.start_s);
      const next = said[i + 1] ? this.x(said[i + 1].start_s) : this.x(this.duration) + 4;
      const w = Math.max(6, Math.min(next - x - 3, Math.max((u.end_s - u.start_s) * this.pxPerS, 0) + 240));
      const box = el("g", { class: `utterance${u.interrupted ? " interrupted" : ""}`, "data-start": u.start_s }, g);
      titled(box, `${role === "caller" ? "Caller" : "Secretary"} at ${fmtS(u.start_s)}: ${u.text}${u.interrupted ? " (interrupted)" : ""}`);
      el("rect", { x, y: top + 5, width: w, height: h - 10, rx: 6, class: "chip" }, box);
      const text = fit(u.text, w - 10);
      if (text) el("text", { x: x + 6, y: top + h / 2 + 4, class: "said" }, box, text);
    });
  }

  drawTurns(svg, top, tops) {
    const targets = this.data.targets;
    const g = el("g", { class: "turns" }, svg);
    const bar = top + 34, barH = 14;
    this.data.turns.forEach((t, i) => {
      const turn = el("g", { class: "turn", "data-turn": i }, g);
      titled(turn, [
        `Turn ${i + 1}: voice-to-voice ${fmtMs(t.voice_to_voice_ms)}`,
        `turn end ${fmtMs(t.endpoint_ms)} (${t.ended_by === "turn_end" ? "the turn-end model" : "silence window"})`,
        `STT final ${fmtMs(t.stt_ms)}, first text ${fmtMs(t.first_text_ms)}, first audio ${fmtMs(t.first_audio_ms)} after the endpoint`,
        t.fillers ? `${t.fillers} filler(s) first; first audio of anything after ${fmtMs(t.to_any_audio_ms)}` : "",
      ].filter(Boolean).join("\n"));
      const x0 = this.x(t.speech_end_s);
      el("line", { x1: x0, x2: x0, y1: tops["caller-wave"] + 6, y2: bar + barH, class: "turn-guide" }, turn);
      if (t.reply_audio_s !== null) {
        const x1 = this.x(t.reply_audio_s);
        el("line", { x1, x2: x1, y1: bar, y2: tops["secretary-wave"] + 6, class: "turn-guide reply" }, turn);
      }
      for (const s of t.stages) {
        const cls = `stage stage-${s.name}${s.name === "turn_end" && t.ended_by !== "turn_end" ? " silence" : ""}`;
        const w = Math.max(s.end_s > s.start_s ? 1.5 : 0, (s.end_s - s.start_s) * this.pxPerS);
        if (w > 0) titled(el("rect", { x: this.x(s.start_s), y: bar, width: w, height: barH, class: cls }, turn), `${s.label}: ${fmtMs(s.ms)}`);
      }
      el("circle", { cx: x0, cy: bar + barH / 2, r: 3.5, class: "turn-start" }, turn);
      const nextX = this.data.turns[i + 1] ? this.x(this.data.turns[i + 1].speech_end_s) : Infinity;
      const label = t.voice_to_voice_ms === null ? "no reply audio" : fmtMs(t.voice_to_voice_ms);
      const room = nextX - x0;
      el("text", { x: x0, y: bar - 6, class: `v2v ${grade(t.voice_to_voice_ms, targets)}` }, turn,
        room > label.length * CHAR_PX + 8 ? label : room > 28 ? String(Math.round(t.voice_to_voice_ms ?? 0)) : "");
      if (t.fillers && t.first_audio_s !== null) {
        const fx = this.x(t.first_audio_s);
        titled(el("text", { x: fx, y: bar + barH + 13, class: "filler", "text-anchor": "middle" }, turn, "◆"),
          `Filler at ${fmtS(t.first_audio_s)} (${fmtMs(t.to_any_audio_ms)} after the last word)`);
      }
    });
  }

  drawBargeIns(svg, height) {
    for (const b of this.data.barge_ins) {
      const x = this.x(b.at_s);
      const g = el("g", { class: "barge-in" }, svg);
      titled(g, `Barge-in at ${fmtS(b.at_s)}: the caller talked over “${b.text}”`);
      el("line", { x1: x, x2: x, y1: 20, y2: height - BOTTOM, class: "barge-line" }, g);
      el("text", { x, y: 24, class: "barge-mark", "text-anchor": "middle" }, g, "▼");
    }
  }

  seek(event, svg) {
    const box = svg.getBoundingClientRect();
    const s = Math.max(0, Math.min(this.duration, (event.clientX - box.left - 6) / this.pxPerS));
    for (const audio of this.audio) audio.currentTime = s;
    this.movePlayhead(s);
  }

  movePlayhead(s) {
    if (!this.playhead || !this.playhead.isConnected) return;
    const x = this.x(s);
    this.playhead.setAttribute("x1", x);
    this.playhead.setAttribute("x2", x);
    this.playhead.setAttribute("visibility", "visible");
  }
}

async function main() {
  const host = document.getElementById("timeline");
  if (!host) return;
  const status = document.getElementById("timeline-status");
  let data;
  try {
    const response = await fetch(host.dataset.src, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the page answered ${response.status}`);
    data = await response.json();
  } catch (error) {
    status.textContent = `The timeline could not be loaded: ${error.message}`;
    return;
  }
  if (data.error) {
    status.textContent = data.error;
    return;
  }
  const timeline = new Timeline(host, data);
  const notes = [];
  for (const role of ["caller", "secretary"]) {
    const track = data.tracks[role];
    if (track && !track.available) notes.push(`${role === "caller" ? "Caller" : "Secretary"} track: ${track.reason}.`);
  }
  if (data.recording && data.recording.complete === false) notes.push(`The recording lost ${(data.recording.lost_s || 0).toFixed(1)} s (${data.recording.reason || "unknown"}).`);
  document.getElementById("timeline-notes").textContent = notes.join(" ");
  document.getElementById("timeline-zoom-in").addEventListener("click", () => timeline.zoom(ZOOM_STEP));
  document.getElementById("timeline-zoom-out").addEventListener("click", () => timeline.zoom(1 / ZOOM_STEP));
  document.getElementById("timeline-fit").addEventListener("click", () => timeline.zoom(null));
  host.dataset.ready = "1";
  window.secretaryTimeline = timeline;
}

main();
