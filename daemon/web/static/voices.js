// Voice preview: speaks a phrase with the persona's current TTS voice and plays it.
const form = document.getElementById("preview-form");
const status = document.getElementById("preview-status");
const audio = document.getElementById("preview-audio");
const csrf = document.querySelector('meta[name="csrf-token"]').content;

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  status.textContent = "Synthesizing…";
  try {
    const res = await fetch("/api/voices/preview", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ persona: data.get("persona"), text: data.get("text") }),
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      status.textContent = body.error || `Preview failed (${res.status})`;
      return;
    }
    const backend = res.headers.get("X-TTS-Backend");
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(await res.blob());
    audio.hidden = false;
    status.textContent = backend ? `Spoken by ${backend}.` : "";
    await audio.play().catch(() => {});
  } catch (err) {
    status.textContent = `Preview failed: ${err}`;
  }
});
