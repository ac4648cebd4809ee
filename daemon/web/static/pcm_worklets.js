// AudioWorklet processors for the web page's test call: the browser side of the 8 kHz phone path.
//
// "capture-8k": microphone at the context rate (44.1/48 kHz) -> anti-alias low-pass (windowed-sinc FIR,
//   3.4 kHz cutoff) -> fractional resampling to 8 kHz -> Int16 frames of 160 samples (20 ms), posted to
//   the main thread as transferred ArrayBuffers.
// "playback-8k": Int16 8 kHz frames from the main thread -> jitter buffer (starts after ~60 ms) ->
//   cubic interpolation up to the context rate; silence on underrun. Posts
//   {type: "stats", played_frames, underruns, buffered_ms} about every 250 ms.

const LINE_RATE = 8000;
const FRAME_SAMPLES = 160; // 20 ms at 8 kHz
const CUTOFF_HZ = 3400;
const TRANSITION_HZ = 1000; // Blackman window: ~5.5 * rate / taps wide, about -74 dB beyond it

function blackmanSincLowPass(rate, cutoffHz, transitionHz) {
  let taps = Math.ceil((5.5 * rate) / transitionHz);
  if (taps % 2 === 0) taps += 1; // odd: a whole-sample, linear-phase delay
  const h = new Float32Array(taps);
  const middle = (taps - 1) / 2;
  const fc = cutoffHz / rate;
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const x = n - middle;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const window =
      0.42 - 0.5 * Math.cos((2 * Math.PI * n) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * n) / (taps - 1));
    h[n] = sinc * window;
    sum += h[n];
  }
  for (let n = 0; n < taps; n++) h[n] /= sum; // unity gain at DC
  return h;
}

class Capture8k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / LINE_RATE; // input samples per output sample (6 at 48 kHz, 5.5125 at 44.1 kHz)
    this.kernel = blackmanSincLowPass(sampleRate, CUTOFF_HZ, TRANSITION_HZ);
    this.half = (this.kernel.length - 1) / 2;
    // history[0] is input sample number `historyStart`; `length` samples are valid.
    this.history = new Float32Array(this.kernel.length + 1024);
    this.historyStart = 0;
    this.length = 0;
    this.nextOut = this.half; // position of the next output sample, in input samples (absolute)
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.stopped = false;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "stop") this.stopped = true;
    };
  }

  // The low-passed signal at absolute input sample `index` (needs index +- half in the history).
  filteredAt(index) {
    const h = this.kernel;
    const x = this.history;
    const base = index - this.half - this.historyStart;
    let acc = 0;
    for (let k = 0; k < h.length; k++) acc += h[k] * x[base + k];
    return acc;
  }

  append(channels, count) {
    if (this.length + count > this.history.length) {
      // Drop what no future output needs, then grow if that was not enough.
      const keepFrom = Math.max(0, Math.floor(this.nextOut) - this.half - this.historyStart);
      this.history.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      this.historyStart += keepFrom;
      if (this.length + count > this.history.length) {
        const grown = new Float32Array((this.length + count) * 2);
        grown.set(this.history.subarray(0, this.length));
        this.history = grown;
      }
    }
    const out = this.history;
    const at = this.length;
    if (channels.length === 0) {
      out.fill(0, at, at + count); // no input connected yet: silence keeps the 8 kHz clock going
    } else {
      const gain = 1 / channels.length;
      for (let i = 0; i < count; i++) {
        let v = 0;
        for (let c = 0; c < channels.length; c++) v += channels[c][i];
        out[at + i] = v * gain;
      }
    }
    this.length += count;
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = Math.round(clamped < 0 ? clamped * 32768 : clamped * 32767);
    if (this.filled === FRAME_SAMPLES) {
      const buffer = this.frame.buffer;
      this.port.postMessage(buffer, [buffer]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.filled = 0;
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    const channels = inputs[0] || [];
    const count = channels.length > 0 ? channels[0].length : 128;
    this.append(channels, count);
    const lastIndex = this.historyStart + this.length - 1;
    while (Math.floor(this.nextOut) + 1 + this.half <= lastIndex) {
      const i = Math.floor(this.nextOut);
      const frac = this.nextOut - i;
      const a = this.filteredAt(i);
      const value = frac === 0 ? a : a + (this.filteredAt(i + 1) - a) * frac;
      this.emit(value);
      this.nextOut += this.step;
    }
    return true;
  }
}

class Playback8k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = LINE_RATE / sampleRate; // line samples per output sample
    this.capacity = LINE_RATE * 4; // 4 s of audio at most; the oldest goes first
    this.ring = new Float32Array(this.capacity);
    this.readAt = 0;
    this.count = 0;
    this.previous = 0; // the sample before ring[readAt], for the cubic
    this.frac = 0;
    this.prebufferSamples = Math.round(LINE_RATE * 0.06); // 60 ms before playing (again)
    this.playing = false;
    this.playedSamples = 0;
    this.underruns = 0;
    this.overflowSamples = 0;
    this.statsEvery = Math.round(sampleRate / 4);
    this.sinceStats = 0;
    this.stopped = false;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      this.push(new Int16Array(data, 0, data.byteLength >> 1));
    } else if (ArrayBuffer.isView(data)) {
      this.push(new Int16Array(data.buffer, data.byteOffset, data.byteLength >> 1));
    } else if (data && data.type === "stop") {
      this.stopped = true;
    } else if (data && data.type === "flush") {
      this.count = 0;
      this.playing = false;
    }
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      if (this.count === this.capacity) {
        this.readAt = (this.readAt + 1) % this.capacity;
        this.count -= 1;
        this.overflowSamples += 1;
      }
      this.ring[(this.readAt + this.count) % this.capacity] = samples[i] / 32768;
      this.count += 1;
    }
  }

  at(offset) {
    return this.ring[(this.readAt + offset) % this.capacity];
  }

  next() {
    if (!this.playing) {
      if (this.count < this.prebufferSamples) return 0;
      this.playing = true;
    }
    if (this.count < 3) {
      this.playing = false; // ran dry: silence until the jitter buffer refills
      this.underruns += 1;
      return 0;
    }
    // Catmull-Rom between ring[readAt] and ring[readAt + 1].
    const p0 = this.previous;
    const p1 = this.at(0);
    const p2 = this.at(1);
    const p3 = this.at(2);
    const t = this.frac;
    const value =
      p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)));
    this.frac += this.step;
    while (this.frac >= 1) {
      this.frac -= 1;
      this.previous = this.at(0);
      this.readAt = (this.readAt + 1) % this.capacity;
      this.count -= 1;
      this.playedSamples += 1;
    }
    return value;
  }

  process(_inputs, outputs) {
    if (this.stopped) return false;
    const output = outputs[0];
    const first = output[0];
    for (let i = 0; i < first.length; i++) first[i] = this.next();
    for (let c = 1; c < output.length; c++) output[c].set(first);
    this.sinceStats += first.length;
    if (this.sinceStats >= this.statsEvery) {
      this.sinceStats = 0;
      this.port.postMessage({
        type: "stats",
        played_frames: Math.floor(this.playedSamples / FRAME_SAMPLES),
        underruns: this.underruns,
        buffered_ms: (this.count * 1000) / LINE_RATE,
        overflow_frames: Math.floor(this.overflowSamples / FRAME_SAMPLES),
      });
    }
    return true;
  }
}

registerProcessor("capture-8k", Capture8k);
registerProcessor("playback-8k", Playback8k);
