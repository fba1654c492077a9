// The live page's audio tap: hands each render quantum of the microphone's first channel to the page, which
// resamples it to Hume's 16 kHz and sends it (live.js). Runs on the audio thread, so it only copies.
"use strict";

class PcmTap extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.port.postMessage(channel.slice(0));
    return true;
  }
}

registerProcessor("pcm-tap", PcmTap);
