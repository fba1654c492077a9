// The live page: the microphone (and camera) streamed through the service's relay to Hume's realtime API, the
// measurements drawn as they arrive. No library: SVG drawn here in the palette of charts.py.
"use strict";

// HUME-V1-FACTS §3/§4: realtime audio is s16le PCM, 16,000 Hz, mono, at most 1 s of audio a second and
// 320,000 bytes a frame. A frame every 100 ms is 3,200 bytes, sent as it is recorded, so never ahead of time.
const AUDIO_FORMAT = {type: "audio/pcm", encoding: "s16le", sample_rate: 16000, channels: 1};
const FRAME_SAMPLES = 1600;
// HUME-V1-FACTS §4: at most 3 video frames a second; one each 400 ms leaves room for timer jitter.
const VIDEO_INTERVAL_MS = 400;
const VIDEO_WIDTH = 640;  // a 640x480 JPEG is tens of kB: far under 2,000,000 bytes and 8,294,400 pixels (§4)
const CLOSE_WAIT_MS = 15000;  // the relay gives Hume 10 s to answer session.close, then closes
const BARS = 8;
const LINES = 5;
const KEPT_POINTS = 120;
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D1F"];
const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attributes, text) {
  const el = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

// Averages each 1/16,000 s of the context's samples into one: a box filter, enough against aliasing in speech.
class Downsampler {
  constructor(fromRate) {
    this.step = fromRate / AUDIO_FORMAT.sample_rate;
    this.next = this.step;
    this.seen = 0;
    this.sum = 0;
    this.count = 0;
    this.last = 0;
    this.out = [];
  }

  push(samples) {
    for (const x of samples) {
      this.sum += x;
      this.count += 1;
      this.seen += 1;
      while (this.seen >= this.next) {
        if (this.count) this.last = this.sum / this.count;
        this.out.push(this.last);
        this.sum = 0;
        this.count = 0;
        this.next += this.step;
      }
    }
  }

  // The samples ready as s16le bytes, at most `limit` of them (all if none given); null when there are none.
  take(limit) {
    const n = Math.min(this.out.length, limit || this.out.length);
    if (n === 0) return null;
    const view = new DataView(new ArrayBuffer(n * 2));
    for (let i = 0; i < n; i++) {
      const v = Math.max(-1, Math.min(1, this.out[i]));
      view.setInt16(i * 2, v < 0 ? v * 0x8000 : v * 0x7fff, true);
    }
    this.out = this.out.slice(n);
    return view.buffer;
  }
}

// One medium's drawing: the latest measurement's strongest expressions as bars, the strongest on average so
// far as lines over the session.
class Board {
  constructor(figure, counter, unit) {
    this.figure = figure;
    this.counter = counter;
    this.unit = unit;
    this.measurements = 0;
    this.scored = 0;
    this.sums = new Map();
    this.points = [];
  }

  reset() {
    this.measurements = 0;
    this.scored = 0;
    this.sums = new Map();
    this.points = [];
    this.figure.querySelectorAll(".drawn").forEach((el) => el.remove());
    this.figure.dataset.measurements = "0";
    this.counter.dataset.count = "0";
  }

  // `scores`: [{name, probability}] as Hume sends them (sorted by probability), or null when nothing was
  // measured (a frame without a measured face); `at` in seconds.
  add(scores, at) {
    this.measurements += 1;
    this.figure.dataset.measurements = String(this.measurements);
    if (scores) {
      this.scored += 1;
      const values = new Map(scores.map((s) => [s.name, s.probability]));
      for (const [name, p] of values) this.sums.set(name, (this.sums.get(name) || 0) + p);
      this.points.push({at, values});
      if (this.points.length > KEPT_POINTS) this.points.shift();
      this.draw(scores);
    }
    this.counter.dataset.count = String(this.measurements);
    this.counter.textContent = this.unit(this.measurements, this.scored);
  }

  draw(scores) {
    const width = 520;
    const rows = scores.slice(0, BARS);
    const bars = svgEl("svg", {class: "chart live-bars", viewBox: `0 0 ${width} ${Math.max(rows.length, 1) * 26 + 6}`,
      role: "img", "aria-label": "Strongest expressions in the latest measurement"});
    if (!rows.length) {
      // Hume lists only the expressions it judged present, each by its own cutoff: the list may be empty.
      bars.append(svgEl("text", {x: 0, y: 18, class: "tick", "data-none": ""}, "No expression judged present"));
    }
    rows.forEach((s, i) => {
      const y = 4 + i * 26;
      const g = svgEl("g", {"data-series": s.name, "data-value": s.probability});
      g.append(svgEl("text", {x: 0, y: y + 14, class: "tick"}, s.name));
      const bar = svgEl("rect", {x: 190, y, width: Math.max(1, s.probability * 280), height: 18,
        fill: PALETTE[i % PALETTE.length]});
      bar.append(svgEl("title", {}, `${s.name}: ${s.probability.toFixed(3)}`));
      g.append(bar);
      g.append(svgEl("text", {x: 196 + s.probability * 280, y: y + 14, class: "tick"}, s.probability.toFixed(2)));
      bars.append(g);
    });

    const height = 180, left = 40, top = 8, bottom = 22, plotW = width - left - 10, plotH = height - top - bottom;
    const first = this.points[0].at, last = this.points[this.points.length - 1].at;
    const span = Math.max(last - first, 1);
    const x = (t) => left + ((t - first) / span) * plotW;
    const y = (v) => top + (1 - v) * plotH;
    const lines = svgEl("svg", {class: "chart live-lines", viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "The strongest expressions on average so far, over the session"});
    for (const v of [0, 0.5, 1]) {
      lines.append(svgEl("line", {x1: left, x2: width - 10, y1: y(v), y2: y(v), class: "grid"}));
      lines.append(svgEl("text", {x: 4, y: y(v) + 4, class: "tick"}, v.toFixed(1)));
    }
    lines.append(svgEl("text", {x: left, y: height - 4, class: "tick"}, `${first.toFixed(1)} s`));
    lines.append(svgEl("text", {x: width - 60, y: height - 4, class: "tick"}, `${last.toFixed(1)} s`));
    const strongest = [...this.sums.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, LINES);
    strongest.forEach(([name, sum], i) => {
      const coords = this.points.map((p) => `${x(p.at).toFixed(1)},${y(p.values.get(name) || 0).toFixed(1)}`);
      const line = svgEl("polyline", {points: coords.join(" "), fill: "none", stroke: PALETTE[i],
        "stroke-width": 2, "data-series": name, "data-points": this.points.length});
      line.append(svgEl("title", {}, `${name}: mean ${(sum / this.scored).toFixed(3)}`));
      const [cx, cy] = coords[coords.length - 1].split(",");
      lines.append(line, svgEl("circle", {cx, cy, r: 3.5, fill: PALETTE[i]}));
    });
    const legend = document.createElement("ul");
    legend.className = "legend";
    strongest.forEach(([name], i) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch swatch-${i}`;
      item.append(swatch, name);
      legend.append(item);
    });
    this.figure.querySelectorAll(".drawn").forEach((el) => el.remove());
    [bars, lines, legend].forEach((el) => el.classList.add("drawn"));
    this.figure.prepend(bars, lines, legend);
  }
}

class LivePage {
  constructor(form) {
    this.form = form;
    this.start = document.getElementById("live-start");
    this.stop = document.getElementById("live-stop");
    this.camera = document.getElementById("live-camera");
    this.status = document.getElementById("live-status");
    this.jobs = document.getElementById("live-jobs");
    this.videoSection = document.getElementById("live-video-section");
    this.preview = document.getElementById("live-preview");
    const count = (one, many) => (n) => `${n} ${n === 1 ? one : many}`;
    this.boards = {
      audio: new Board(document.getElementById("live-audio"), document.getElementById("live-audio-count"),
        count("measurement", "measurements")),
      video: new Board(document.getElementById("live-video"), document.getElementById("live-video-count"),
        (n, faces) => `${count("frame", "frames")(n)}, ${faces} with a measured face`),
    };
    this.sockets = new Map();
    form.addEventListener("submit", (event) => { event.preventDefault(); this.begin(); });
    this.stop.addEventListener("click", () => this.end());
  }

  say(text, problem) {
    this.status.textContent = text;
    this.status.classList.toggle("error", Boolean(problem));
  }

  async begin() {
    this.start.disabled = true;
    this.camera.disabled = true;
    this.failure = null;
    this.jobs.replaceChildren();
    Object.values(this.boards).forEach((b) => b.reset());
    const withCamera = this.camera.checked;
    this.videoSection.hidden = !withCamera;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.fail("This browser offers no microphone here: the page must be served over https (or from localhost).");
      return;
    }
    this.say("Asking for the microphone" + (withCamera ? " and the camera…" : "…"));
    try {
      // Hume measures the voice as it is: the browser's echo cancelling, noise suppression and gain control
      // would change it.
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false},
        video: withCamera ? {width: {ideal: VIDEO_WIDTH}} : false,
      });
    } catch (error) {
      this.fail(`The browser did not give the ${withCamera ? "microphone or camera" : "microphone"}: ${error.name}` +
        (error.name === "NotAllowedError" ? " (allow it in the address bar and start again)." : "."));
      return;
    }
    try {
      await this.open("audio");
      if (withCamera && this.sockets.has("audio")) await this.open("video");
    } catch (error) {
      this.fail(error.message);
      return;
    }
    this.stop.disabled = this.sockets.size === 0;
  }

  async token() {
    const response = await fetch(this.form.action, {method: "POST", credentials: "same-origin",
      body: new URLSearchParams(new FormData(this.form))});
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    if (!response.ok) {
      const why = body && body.error ? body.error.message : `HTTP ${response.status}`;
      throw new Error(response.status === 401 ? "Your dashboard session ended: sign in again." :
        `No session token: ${why}`);
    }
    return body;
  }

  async open(medium) {
    const minted = await this.token();
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/sessions/${medium}`;
    // The token as a subprotocol beside hes.session: same origin (the page's connect-src is 'self'), and
    // no token in a URL a proxy might log.
    const ws = new WebSocket(url, ["hes.session", minted.subprotocol]);
    ws.binaryType = "arraybuffer";
    const session = {ws, medium, jobId: minted.job_id, opened: 0, closing: false, stopped: null};
    this.sockets.set(medium, session);
    this.listJob(session);
    try {
      await new Promise((resolve, reject) => {
        ws.addEventListener("open", resolve, {once: true});
        ws.addEventListener("close", (event) => reject(new Error(closeText(medium, event))), {once: true});
      });
    } catch (error) {
      this.sockets.delete(medium);
      this.setState(medium, "failed", "not opened");
      throw error;
    }
    session.opened = performance.now();
    ws.addEventListener("message", (event) => this.receive(session, event));
    ws.addEventListener("close", (event) => this.closed(session, event));
    if (medium === "audio") {
      ws.send(JSON.stringify({type: "session.update", audio: AUDIO_FORMAT}));
      session.stopped = await this.recordAudio(ws);
    } else {
      session.stopped = this.recordVideo(ws);
    }
    if (session.closing) {
      // The relay closed it (Hume refused the session, say) while the recording was being set up.
      await session.stopped();
      return;
    }
    this.say("Live: speak" + (medium === "video" ? " and look into the camera." : "."));
  }

  async recordAudio(ws) {
    const context = new AudioContext();
    await context.audioWorklet.addModule(this.form.dataset.worklet);
    const source = context.createMediaStreamSource(new MediaStream(this.stream.getAudioTracks()));
    const tap = new AudioWorkletNode(context, "pcm-tap", {numberOfOutputs: 1});
    // Connected through to the output so the browser runs the tap; its output is silence (it writes none).
    source.connect(tap).connect(context.destination);
    const down = new Downsampler(context.sampleRate);
    tap.port.onmessage = (event) => {
      down.push(event.data);
      let frame;
      while (down.out.length >= FRAME_SAMPLES && (frame = down.take(FRAME_SAMPLES))) {
        if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      }
    };
    return async () => {
      tap.port.onmessage = null;
      source.disconnect();
      const rest = down.take();
      if (rest && ws.readyState === WebSocket.OPEN) ws.send(rest);
      await context.close();
    };
  }

  recordVideo(ws) {
    this.preview.srcObject = new MediaStream(this.stream.getVideoTracks());
    this.preview.play().catch(() => {});
    const canvas = document.createElement("canvas");
    let busy = false;
    const timer = setInterval(() => {
      const w = this.preview.videoWidth, h = this.preview.videoHeight;
      if (busy || !w || ws.readyState !== WebSocket.OPEN) return;
      const scale = Math.min(1, VIDEO_WIDTH / w);
      canvas.width = Math.round(w * scale);
      canvas.height = Math.round(h * scale);
      canvas.getContext("2d").drawImage(this.preview, 0, 0, canvas.width, canvas.height);
      busy = true;
      canvas.toBlob(async (blob) => {
        if (blob && ws.readyState === WebSocket.OPEN) ws.send(await blob.arrayBuffer());
        busy = false;
      }, "image/jpeg", 0.85);
    }, VIDEO_INTERVAL_MS);
    return async () => { clearInterval(timer); };
  }

  receive(session, event) {
    if (typeof event.data !== "string") return;
    let message;
    try { message = JSON.parse(event.data); } catch (error) { return; }
    const seconds = (performance.now() - session.opened) / 1000;
    if (message.type === "measurement.result") {
      if (session.medium === "audio") {
        this.boards.audio.add(message.expressions || [], (message.audio_end_ms || 0) / 1000);
      } else {
        const face = (message.faces || []).find((f) => f.face_id !== null && f.expressions);
        this.boards.video.add(face ? face.expressions : null, seconds);
      }
    } else if (message.type === "error") {
      this.say(`${session.medium}: ${message.code}: ${message.message}`, !message.retryable);
    } else if (message.type === "session.created") {
      // The relay stores the job before passing Hume's first message on: from here it reads `live`.
      this.setState(session.medium, "live", "live");
    } else if (message.type === "session.closed") {
      session.summary = message;
    }
  }

  async end() {
    this.stop.disabled = true;
    this.say("Stopping: the last measurements are on their way…");
    for (const session of this.sockets.values()) await this.finish(session);
  }

  async finish(session) {
    if (session.closing) return;
    session.closing = true;
    if (session.stopped) await session.stopped();
    if (this.stream) this.stopTracks(session.medium);
    if (session.ws.readyState === WebSocket.OPEN) {
      // Hume's orderly end: the last measurement, then session.closed, then the relay closes (and the job is
      // stored final before it does).
      session.ws.send(JSON.stringify({type: "session.close"}));
      session.timer = setTimeout(() => session.ws.close(1000, "stopped"), CLOSE_WAIT_MS);
    }
  }

  stopTracks(medium) {
    const tracks = medium === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
    tracks.forEach((track) => track.stop());
    if (medium === "video") this.preview.srcObject = null;
  }

  closed(session, event) {
    clearTimeout(session.timer);
    this.sockets.delete(session.medium);
    if (!session.closing) this.finish(session);
    const ok = event.code === 1000 && !(session.summary && session.summary.reason === "error");
    if (!ok) this.failure = closeText(session.medium, event);
    this.setState(session.medium, ok ? "ended" : "failed", ok ? "ended" : `ended: ${this.failure}`);
    // One medium's session ending ends the other's: the page records both or neither.
    for (const other of this.sockets.values()) this.finish(other);
    if (this.sockets.size === 0) {
      this.say(this.failure || "Session ended. Its job is stored: open it below.", Boolean(this.failure));
      this.start.disabled = false;
      this.camera.disabled = false;
      this.stop.disabled = true;
    }
  }

  setState(medium, state, text) {
    const item = this.jobs.querySelector(`[data-medium='${medium}']`);
    item.dataset.state = state;
    item.querySelector(".outcome").textContent = text;
  }

  listJob(session) {
    const item = document.createElement("li");
    item.dataset.medium = session.medium;
    item.dataset.job = session.jobId;
    item.dataset.state = "opening";
    const link = document.createElement("a");
    link.href = this.form.dataset.jobs + session.jobId;
    link.textContent = `${session.medium === "audio" ? "Voice" : "Face"} session's job`;
    const outcome = document.createElement("span");
    outcome.className = "outcome";
    outcome.textContent = "opening";
    item.append(link, " (", outcome, ")");
    this.jobs.append(item);
  }

  fail(text) {
    this.say(text, true);
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    for (const session of this.sockets.values()) this.finish(session);
    if (this.sockets.size === 0) {
      this.start.disabled = false;
      this.camera.disabled = false;
      this.stop.disabled = true;
    }
  }
}

function closeText(medium, event) {
  const known = {4401: "the session token was refused", 4403: "this key may not start sessions",
    1013: "Hume is busy or unreachable: try again shortly", 1011: "Hume refused the session or was lost"};
  const why = event.reason || known[event.code] || "the connection was lost";
  return `The ${medium} session closed (${event.code}): ${why}`;
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("live-form");
  if (form) new LivePage(form);
});
