// The dashboard's only script: swap a timeline when the viewer changes it, and poll running jobs.
// Pages work without it (the forms submit normally); it only saves reloads.
"use strict";

function timelineControls(form) {
  const target = () => document.getElementById(form.dataset.target);
  let timer = null;
  const redraw = async () => {
    const params = new URLSearchParams(new FormData(form));
    const figure = target();
    figure.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.fragment + "?" + params.toString(), {credentials: "same-origin"});
      if (response.ok) {
        figure.outerHTML = await response.text();
        history.replaceState(null, "", "?" + params.toString() + "#" + form.getAttribute("action").split("#")[1]);
      } else {
        figure.removeAttribute("aria-busy");
        figure.querySelector("figcaption").textContent = "Could not redraw: " + (await response.text()).slice(0, 200);
      }
    } catch (error) {
      figure.removeAttribute("aria-busy");
    }
  };
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(redraw, 150); });
  form.addEventListener("submit", (event) => { event.preventDefault(); redraw(); });
}

function formatDuration(value) {
  return value === null || value === undefined ? "\u2014" : value.toFixed(1) + " s";
}

function pollJobs() {
  const rows = () => Array.from(document.querySelectorAll("[data-job][data-final='false']"));
  if (rows().length === 0) return;
  const reloadWhenFinal = document.querySelector("[data-reload-when-final]") !== null;
  const tick = async () => {
    const waiting = rows();
    if (waiting.length === 0) return;
    const params = new URLSearchParams();
    waiting.forEach((row) => params.append("id", row.dataset.job));
    let delay = 2000;
    try {
      const response = await fetch("/dashboard/jobs/status.json?" + params.toString(), {credentials: "same-origin"});
      if (response.ok) {
        const body = await response.json();
        delay = body.poll_after_s * 1000;
        for (const row of waiting) {
          const job = body.jobs[row.dataset.job];
          if (!job) continue;
          const status = row.querySelector("[data-field='status']");
          status.textContent = job.status;
          status.className = "status status-" + job.status;
          row.querySelector("[data-field='num_predictions']").textContent = job.num_predictions;
          row.querySelector("[data-field='num_errors']").textContent = job.num_errors;
          row.querySelector("[data-field='duration_s']").textContent = formatDuration(job.duration_s);
          if (job.final) {
            row.dataset.final = "true";
            if (reloadWhenFinal) { location.reload(); return; }
          }
        }
      }
    } catch (error) {
      delay = 5000;
    }
    setTimeout(tick, delay);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.timeline-controls").forEach(timelineControls);
  pollJobs();
});
