// The "Test call" button: talk to the secretary through this browser's microphone.
//
// Microphone -> AudioWorklet "capture-8k" (8 kHz PCM16 frames of 20 ms) -> WebSocket /ws/test-call ->
// the same call flow as a phone call; the reply comes back as 320-byte binary frames -> AudioWorklet
// "playback-8k" (jitter buffer, upsampling) -> speakers. Text messages carry the transcript and the end.
//
// Wire protocol: the server first sends {"type": "ready", "call_id", "sample_rate": 8000, "frame_ms": 20,
// "format": "s16le"}; the client sends binary caller audio and {"type": "hangup"}; the server sends
// binary reply frames, events ({"type": "utterance", "role", "text"}, ...), {"type": "error", "message"}
// for a message it did not understand, and finally {"type": "ended", "reason"} before closing.

const WORKLET_URL = new URL("./pcm_worklets.js", import.meta.url);
const FRAME_BYTES = 320;
const MAX_BUFFERED_BYTES = 64 * 1024; // ~2 s of caller audio waiting in the socket: drop rather than lag
const HANGUP_WAIT_MS = 5000; // how long to wait for the server's "ended" after a hangup
const DRAIN_WAIT_MS = 4000; // how long to let the last reply audio play after the call ended

export function testCallUrl(path = "/ws/test-call") {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const minutes = String(Math.floor(total / 60)).padStart(2, "0");
  const seconds = String(total % 60).padStart(2, "0");
  return `${minutes}:${seconds}`;
}

function describe(error) {
  if (!error) return "unknown error";
  return error.message || error.name || String(error);
}

export class TestCall {
  // options: {url, workletUrl, status: Element, transcript: Element, onStateChange(state, call)}
  constructor(options = {}) {
    this.url = options.url || testCallUrl();
    this.workletUrl = options.workletUrl || WORKLET_URL;
    this.statusEl = options.status || null;
    this.transcriptEl = options.transcript || null;
    this.onStateChange = options.onStateChange || null;
    this.state = "idle"; // idle | connecting | in-call | ending | ended | error
    this.callId = null;
    this.endReason = null;
    this.sentFrames = 0;
    this.droppedFrames = 0;
    this.receivedFrames = 0;
    this.playback = { played_frames: 0, underruns: 0, buffered_ms: 0 };
    this.stream = null;
    this.context = null;
    this.captureNode = null;
    this.playbackNode = null;
    this.source = null;
    this.socket = null;
    this.ready = false;
    this.startedAt = 0;
    this.clockTimer = null;
    this.hangupTimer = null;
    this.released = false;
  }

  stats() {
    return {
      sent_frames: this.sentFrames,
      dropped_frames: this.droppedFrames,
      received_frames: this.receivedFrames,
      played_frames: this.playback.played_frames,
      underruns: this.playback.underruns,
      buffered_ms: this.playback.buffered_ms,
      state: this.state,
    };
  }

  get active() {
    return this.state === "connecting" || this.state === "in-call" || this.state === "ending";
  }

  async start() {
    if (this.state !== "idle") throw new Error("a TestCall starts once");
    this.setState("connecting", "Connecting…");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
    } catch (error) {
      const refused = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
      this.fail(refused ? `Microphone access was refused: ${describe(error)}` : `No microphone: ${describe(error)}`);
      return;
    }
    if (this.state !== "connecting") return this.release(); // hung up meanwhile
    try {
      await this.openAudio();
    } catch (error) {
      this.fail(`Could not start audio: ${describe(error)}`);
      return;
    }
    if (this.state !== "connecting") return this.release();
    this.openSocket();
  }

  async openAudio() {
    const context = new AudioContext({ latencyHint: "interactive" });
    this.context = context;
    if (context.state === "suspended") await context.resume();
    await context.audioWorklet.addModule(this.workletUrl);
    this.source = context.createMediaStreamSource(this.stream);
    this.captureNode = new AudioWorkletNode(context, "capture-8k", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
    });
    this.captureNode.port.onmessage = (event) => this.sendCaptured(event.data);
    this.source.connect(this.captureNode);
    this.playbackNode = new AudioWorkletNode(context, "playback-8k", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.playbackNode.port.onmessage = (event) => {
      if (event.data && event.data.type === "stats") this.playback = event.data;
    };
    this.playbackNode.connect(context.destination);
  }

  openSocket() {
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onerror = () => {
      if (!this.ready && this.active) this.fail("Could not reach the secretary.");
    };
    socket.onclose = (event) => {
      this.socket = null;
      if (this.state === "connecting") {
        this.fail(`Could not reach the secretary (connection closed, code ${event.code}).`);
      } else if (this.active) {
        this.finish(`connection closed (code ${event.code})`);
      }
    };
  }

  sendCaptured(buffer) {
    const socket = this.socket;
    if (!this.ready || this.state !== "in-call" || !socket || socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.droppedFrames += 1;
      return;
    }
    socket.send(buffer);
    this.sentFrames += 1;
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      this.receivedFrames += Math.floor(data.byteLength / FRAME_BYTES);
      if (this.playbackNode) this.playbackNode.port.postMessage(data, [data]);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch (error) {
      console.warn("test call: a message that is not JSON", data);
      return;
    }
    switch (message.type) {
      case "ready":
        this.ready = true;
        this.callId = message.call_id || null;
        if (message.sample_rate !== 8000 || message.format !== "s16le") {
          console.warn("test call: unexpected audio format", message);
        }
        this.startedAt = performance.now();
        this.setState("in-call", "In call 00:00");
        this.clockTimer = setInterval(() => {
          if (this.state === "in-call") this.setStatus(`In call ${formatDuration(performance.now() - this.startedAt)}`);
        }, 1000);
        break;
      case "utterance":
        this.addLine(message.role, message.text);
        break;
      case "ended":
        this.finish(message.reason || "ended");
        break;
      case "error":
        console.warn("test call: the server did not understand a message:", message.message);
        break;
      default:
        break; // future events are ignored
    }
  }

  addLine(role, text) {
    if (!this.transcriptEl || typeof text !== "string" || !text) return;
    const who = role === "caller" ? "caller" : "secretary";
    const line = document.createElement("li");
    line.className = who;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "caller" ? "You" : "Secretary";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    line.append(label, body);
    this.transcriptEl.append(line);
    this.transcriptEl.scrollTop = this.transcriptEl.scrollHeight;
  }

  hangup() {
    if (!this.active || this.state === "ending") return;
    const socket = this.socket;
    if (this.state === "connecting" || !socket || socket.readyState !== WebSocket.OPEN) {
      if (socket) socket.close(1000, "hangup");
      this.finish("hung up");
      return;
    }
    this.setState("ending", "Hanging up…");
    this.stopMicrophone();
    socket.send(JSON.stringify({ type: "hangup" }));
    this.hangupTimer = setTimeout(() => {
      if (this.state === "ending") {
        if (this.socket) this.socket.close(1000, "hangup");
        this.finish("hung up");
      }
    }, HANGUP_WAIT_MS);
  }

  finish(reason) {
    if (this.state === "ended" || this.state === "error") return;
    this.endReason = reason;
    this.setState("ended", `Ended (${reason})`);
    this.stopMicrophone();
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.close(1000, "ended");
    this.releaseAfterDrain();
  }

  fail(message) {
    if (this.state === "ended" || this.state === "error") return;
    this.setState("error", message);
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, "error");
    this.release();
  }

  stopMicrophone() {
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
    }
    if (this.captureNode) {
      this.captureNode.port.postMessage({ type: "stop" });
      this.captureNode.port.onmessage = null;
    }
  }

  // Let the last reply audio play (the goodbye), then free the audio context.
  releaseAfterDrain() {
    const started = performance.now();
    const check = () => {
      const waited = performance.now() - started;
      if (this.playback.buffered_ms > 0 && waited < DRAIN_WAIT_MS) {
        setTimeout(check, 100);
      } else {
        this.release();
      }
    };
    setTimeout(check, 300); // at least one stats report after the last frame
  }

  release() {
    if (this.released) return;
    this.released = true;
    clearInterval(this.clockTimer);
    clearTimeout(this.hangupTimer);
    this.stopMicrophone();
    if (this.source) this.source.disconnect();
    if (this.playbackNode) {
      this.playbackNode.port.postMessage({ type: "stop" });
      this.playbackNode.disconnect();
    }
    if (this.context && this.context.state !== "closed") {
      this.context.close().catch(() => {});
    }
    this.stream = null;
  }

  setState(state, status) {
    this.state = state;
    if (status !== undefined) this.setStatus(status);
    if (this.onStateChange) this.onStateChange(state, this);
  }

  setStatus(text) {
    if (this.statusEl) this.statusEl.textContent = text;
  }
}

// Auto-wiring for the page that has the buttons.
function wirePage() {
  const startButton = document.getElementById("test-call-start");
  if (!startButton) return;
  const hangupButton = document.getElementById("test-call-hangup");
  const status = document.getElementById("test-call-status");
  const transcript = document.getElementById("test-call-transcript");
  const syncButtons = (state) => {
    const active = state === "connecting" || state === "in-call" || state === "ending";
    startButton.disabled = active;
    if (hangupButton) hangupButton.disabled = !(state === "connecting" || state === "in-call");
  };
  startButton.addEventListener("click", () => {
    const current = window.secretaryTestCall;
    if (current && current.active) return;
    if (transcript) transcript.replaceChildren();
    const call = new TestCall({ status, transcript, onStateChange: syncButtons });
    window.secretaryTestCall = call;
    call.start().catch((error) => call.fail(`Test call failed: ${describe(error)}`));
  });
  if (hangupButton) {
    hangupButton.addEventListener("click", () => {
      const current = window.secretaryTestCall;
      if (current) current.hangup();
    });
  }
  window.addEventListener("pagehide", () => {
    const current = window.secretaryTestCall;
    if (current && current.active) current.hangup();
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", wirePage, { once: true });
} else {
  wirePage();
}
