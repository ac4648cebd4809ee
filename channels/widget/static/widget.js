/*
 * The secretary's website chat widget.
 *
 * Embed: <script src="https://BOX/widget.js" data-widget="site" async></script>
 *
 * It loads the widget's look from BOX/widget/<id>/config (only pages on the
 * widget's allowed origins may), draws a launcher and a chat panel inside a
 * Shadow DOM (the page's CSS and the widget's never meet), and chats over a
 * WebSocket (BOX/widget/<id>/chat). The visitor's session id lives in
 * localStorage, the visible conversation in sessionStorage; the server keeps
 * the conversation too and sends it on connect. Text from the server or the
 * visitor only ever goes into textContent.
 */
(() => {
  "use strict";

  const script = document.currentScript || document.querySelector('script[data-widget][src*="widget.js"]');
  if (!script) return;
  const widgetId = script.getAttribute("data-widget") || "";
  const tag = "Secretary widget";
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(widgetId)) {
    console.warn(tag + ": data-widget must name a widget, got " + JSON.stringify(widgetId));
    return;
  }
  const box = new URL(script.src, location.href).origin;
  const KEY = "secretary-widget:" + widgetId + ":";
  const LOG_KEEP = 80;
  const COLOR = /^#[0-9a-fA-F]{6}$/;

  const storage = (area) => {
    try {
      return window[area];
    } catch (e) {
      return null; // storage blocked by the browser's settings
    }
  };
  const load = (area, name) => {
    try {
      const store = storage(area);
      return store ? store.getItem(KEY + name) : null;
    } catch (e) {
      return null;
    }
  };
  const save = (area, name, value) => {
    try {
      const store = storage(area);
      if (!store) return;
      if (value === null) store.removeItem(KEY + name);
      else store.setItem(KEY + name, value);
    } catch (e) {
      /* full or blocked: the server still has the conversation */
    }
  };

  const el = (name, attrs, children) => {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "hidden") node.hidden = Boolean(value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  };

  const CSS = `
:host { all: initial; }
.root { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; display: flex; flex-direction: column;
  align-items: flex-end; gap: 12px; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2937; }
.root.left { right: auto; left: 20px; align-items: flex-start; }
button { font: inherit; cursor: pointer; }
.launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--sw-primary);
  color: var(--sw-text); box-shadow: 0 4px 14px rgba(0,0,0,.25); display: grid; place-items: center; padding: 0; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.launcher:focus-visible, button:focus-visible, textarea:focus-visible, input:focus-visible {
  outline: 3px solid #f59e0b; outline-offset: 2px; }
.panel { width: min(360px, calc(100vw - 40px)); height: min(540px, calc(100vh - 110px)); background: #fff;
  border-radius: 14px; box-shadow: 0 10px 40px rgba(0,0,0,.25); display: flex; flex-direction: column;
  overflow: hidden; }
.panel[hidden] { display: none; }
header { background: var(--sw-primary); color: var(--sw-text); padding: 12px 14px; display: flex;
  align-items: center; gap: 8px; }
.heading { flex: 1; min-width: 0; }
.title { font-weight: 600; font-size: 15px; }
.status { font-size: 12px; opacity: .85; min-height: 1em; }
.close { background: transparent; border: 0; color: inherit; font-size: 22px; line-height: 1; padding: 2px 6px; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px;
  background: #f9fafb; }
.msg { max-width: 85%; padding: 8px 11px; border-radius: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.assistant { align-self: flex-start; background: #fff; border: 1px solid #e5e7eb; }
.msg.user { align-self: flex-end; background: var(--sw-primary); color: var(--sw-text); }
.msg.note { align-self: center; background: #fef3c7; color: #92400e; font-size: 13px; max-width: 95%; }
.msg.typing:empty::after { content: "\\2026"; color: #6b7280; }
.handoff { margin: 0 12px 8px; background: transparent; border: 1px dashed var(--sw-primary);
  color: #1f2937; border-radius: 10px; padding: 6px 10px; font-size: 13px; }
.handoff.offer { border-style: solid; font-weight: 600; }
.callback { padding: 10px 12px; border-top: 1px solid #e5e7eb; display: flex; flex-direction: column; gap: 6px; }
.callback[hidden], .thanks[hidden], .handoff[hidden] { display: none; }
.callback label { display: flex; flex-direction: column; font-size: 12px; color: #4b5563; gap: 2px; }
input, textarea { font: inherit; color: #111827; border: 1px solid #d1d5db; border-radius: 8px; padding: 7px 9px;
  background: #fff; box-sizing: border-box; width: 100%; }
.callback textarea { resize: vertical; min-height: 44px; }
.form-error { color: #b91c1c; font-size: 13px; min-height: 0; }
.row { display: flex; gap: 8px; justify-content: flex-end; }
.primary { background: var(--sw-primary); color: var(--sw-text); border: 0; border-radius: 8px; padding: 7px 14px; }
.secondary { background: #e5e7eb; color: #1f2937; border: 0; border-radius: 8px; padding: 7px 14px; }
.thanks { margin: 0 12px 10px; padding: 8px 11px; background: #dcfce7; color: #166534; border-radius: 10px; }
.composer { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid #e5e7eb; align-items: flex-end; }
.composer textarea { resize: none; height: 40px; max-height: 120px; }
.composer button:disabled { opacity: .5; cursor: default; }
`;

  const ICON_PATH = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";

  function icon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICON_PATH);
    svg.appendChild(path);
    return svg;
  }

  function mount(cfg) {
    // A custom element, not a <div>: the page's rules for div (or any common tag) never reach it.
    const host = el("secretary-widget", { "data-widget": widgetId });
    if (COLOR.test(cfg.primary_color || "")) host.style.setProperty("--sw-primary", cfg.primary_color);
    else host.style.setProperty("--sw-primary", "#2563eb");
    if (COLOR.test(cfg.text_color || "")) host.style.setProperty("--sw-text", cfg.text_color);
    else host.style.setProperty("--sw-text", "#ffffff");
    const shadow = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS); // not an inline <style>: works under a page's strict style-src
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.appendChild(el("style", { text: CSS }));
    }

    const title = String(cfg.title || "Chat");
    const maxChars = Number(cfg.max_chars) || 1000;
    const panelId = "secretary-widget-panel";
    const status = el("div", { class: "status", "aria-live": "polite" });
    const closeButton = el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "\u00d7" });
    const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    const input = el("textarea", { "aria-label": "Message", placeholder: "Write a message\u2026", maxlength: String(maxChars), rows: "1" });
    const sendButton = el("button", { type: "submit", class: "primary", "aria-label": "Send message", text: "Send" });
    const composer = el("form", { class: "composer" }, [input, sendButton]);
    const handoffButton = el("button", { type: "button", class: "handoff", text: "Leave your number, we will call you back" });
    const nameInput = el("input", { name: "name", maxlength: "80", autocomplete: "name" });
    const numberInput = el("input", { name: "number", type: "tel", maxlength: "32", autocomplete: "tel", required: "" });
    const noteInput = el("textarea", { name: "note", maxlength: "500", rows: "2" });
    const formError = el("div", { class: "form-error", role: "alert" });
    const cancelButton = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const callbackForm = el("form", { class: "callback", hidden: true, "aria-label": "Leave your number" }, [
      el("label", {}, [document.createTextNode("Your name"), nameInput]),
      el("label", {}, [document.createTextNode("Phone number"), numberInput]),
      el("label", {}, [document.createTextNode("What is it about? (optional)"), noteInput]),
      formError,
      el("div", { class: "row" }, [cancelButton, el("button", { type: "submit", class: "primary", text: "Call me back" })]),
    ]);
    const thanks = el("div", { class: "thanks", role: "status", hidden: true });
    const panel = el("section", { class: "panel", id: panelId, role: "dialog", "aria-label": title, hidden: true }, [
      el("header", {}, [el("div", { class: "heading" }, [el("div", { class: "title", text: title }), status]), closeButton]),
      log, handoffButton, thanks, callbackForm, composer,
    ]);
    const launcher = el("button", {
      type: "button", class: "launcher", "aria-label": "Open chat: " + title, "aria-expanded": "false", "aria-controls": panelId,
    }, [icon()]);
    const root = el("div", { class: cfg.position === "bottom-left" ? "root left" : "root" }, [panel, launcher]);
    shadow.appendChild(root);
    document.body.appendChild(host);

    // -- the conversation ------------------------------------------------------------
    let entries = [];
    try {
      const stored = JSON.parse(load("sessionStorage", "log") || "[]");
      if (Array.isArray(stored)) entries = stored.filter((e) => e && typeof e.text === "string" && (e.role === "user" || e.role === "assistant"));
    } catch (e) {
      entries = [];
    }
    const remember = () => save("sessionStorage", "log", JSON.stringify(entries.slice(-LOG_KEEP)));

    const bubble = (role, text, extra) => {
      const node = el("div", { class: "msg " + role + (extra ? " " + extra : "") });
      node.textContent = text;
      log.appendChild(node);
      log.scrollTop = log.scrollHeight;
      return node;
    };
    const render = () => {
      log.textContent = "";
      if (cfg.greeting) bubble("assistant", String(cfg.greeting), "greeting");
      for (const entry of entries) bubble(entry.role, entry.text);
    };
    const note = (text) => bubble("note", text);
    render();

    // -- the connection --------------------------------------------------------------
    let socket = null;
    let ready = false;
    let wanted = false;
    let attempts = 0;
    let timer = 0;
    let answer = null; // the bubble the current answer streams into
    let waiting = false;
    let asked = null; // the visitor's message being answered: {text, node}

    const setStatus = (text) => { status.textContent = text; };
    const refresh = () => { sendButton.disabled = !ready || waiting; };
    const dropAnswer = () => {
      if (answer && !answer.textContent) answer.remove();
      answer = null;
      waiting = false;
      refresh();
    };

    const connect = () => {
      if (socket || !wanted) return;
      const url = new URL("/widget/" + widgetId + "/chat", box);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const session = load("localStorage", "session");
      if (session) url.searchParams.set("session", session);
      setStatus(attempts ? "Reconnecting\u2026" : "Connecting\u2026");
      const ws = new WebSocket(url.href);
      socket = ws;
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (message && typeof message === "object") onServer(message);
      };
      ws.onclose = () => {
        if (socket !== ws) return;
        socket = null;
        ready = false;
        asked = null;
        dropAnswer();
        if (!wanted) return;
        const delay = Math.min(30000, 1000 * 2 ** Math.min(attempts, 5)) * (0.5 + Math.random() / 2);
        attempts += 1;
        setStatus("Offline, reconnecting in " + Math.ceil(delay / 1000) + " s\u2026");
        timer = setTimeout(() => { timer = 0; connect(); }, delay);
      };
    };

    const onServer = (message) => {
      const text = typeof message.text === "string" ? message.text : "";
      switch (message.type) {
        case "hello":
          attempts = 0;
          ready = true;
          if (typeof message.session === "string") save("localStorage", "session", message.session);
          if (Array.isArray(message.history) && message.history.length) {
            entries = message.history.filter((e) => e && typeof e.text === "string" && (e.role === "user" || e.role === "assistant"))
              .map((e) => ({ role: e.role, text: e.text }));
            remember();
            render();
          }
          asked = null;
          dropAnswer();
          setStatus("");
          break;
        case "delta":
          if (!answer) answer = bubble("assistant", "");
          answer.classList.remove("typing");
          answer.textContent += text;
          log.scrollTop = log.scrollHeight;
          break;
        case "done":
          if (!answer) answer = bubble("assistant", "");
          answer.classList.remove("typing");
          answer.textContent = text;
          entries.push({ role: "assistant", text: text });
          remember();
          answer = null;
          asked = null;
          waiting = false;
          refresh();
          if (message.handoff) offerHandoff();
          break;
        case "error":
          if (message.for === "callback") {
            formError.textContent = String(message.message || "Your number could not be sent.");
            break;
          }
          dropAnswer();
          note(String(message.message || "Something went wrong."));
          if (message.handoff) offerHandoff();
          break;
        case "rate_limited": {
          const seconds = Number(message.retry_after_s) || 60;
          const says = String(message.message || "You are sending messages too fast. Please wait " + seconds + " s.");
          if (message.for === "callback") {
            formError.textContent = says;
            break;
          }
          dropAnswer();
          if (asked) { // not taken: give the text back to send later
            asked.node.remove();
            const index = entries.lastIndexOf(asked.entry);
            if (index >= 0) entries.splice(index, 1);
            remember();
            if (!input.value) input.value = asked.text;
            asked = null;
          }
          note(says);
          break;
        }
        case "callback_ok":
          callbackForm.hidden = true;
          handoffButton.hidden = true;
          thanks.hidden = false;
          thanks.textContent = "Thank you! We will call you back soon.";
          break;
        default:
          break;
      }
    };

    const send = () => {
      const text = input.value.trim();
      if (!text) return;
      if (text.length > maxChars) {
        note("That message is too long: at most " + maxChars + " characters.");
        return;
      }
      if (!socket || !ready || waiting) return;
      socket.send(JSON.stringify({ type: "message", text: text }));
      const entry = { role: "user", text: text };
      entries.push(entry);
      remember();
      asked = { text: text, entry: entry, node: bubble("user", text) };
      input.value = "";
      waiting = true;
      answer = bubble("assistant", "", "typing");
      refresh();
    };

    const offerHandoff = () => {
      handoffButton.classList.add("offer");
      handoffButton.hidden = false;
    };

    // -- opening and closing -----------------------------------------------------------
    const open = (focus) => {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", "Close chat: " + title);
      save("sessionStorage", "open", "1");
      wanted = true;
      connect();
      log.scrollTop = log.scrollHeight;
      if (focus) input.focus();
    };
    const close = () => {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", "Open chat: " + title);
      save("sessionStorage", "open", null);
      launcher.focus();
    };

    launcher.addEventListener("click", () => (panel.hidden ? open(true) : close()));
    closeButton.addEventListener("click", close);
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      }
    });
    handoffButton.addEventListener("click", () => {
      callbackForm.hidden = false;
      handoffButton.hidden = true;
      formError.textContent = "";
      nameInput.focus();
    });
    cancelButton.addEventListener("click", () => {
      callbackForm.hidden = true;
      handoffButton.hidden = false;
    });
    callbackForm.addEventListener("submit", (event) => {
      event.preventDefault();
      formError.textContent = "";
      const digits = numberInput.value.replace(/[\s\-()]/g, "");
      if (!/^\+?[0-9]{5,20}$/.test(digits)) {
        formError.textContent = "Please enter a valid phone number.";
        numberInput.focus();
        return;
      }
      if (!socket || !ready) {
        formError.textContent = "Not connected yet; please try again in a moment.";
        return;
      }
      socket.send(JSON.stringify({
        type: "callback", name: nameInput.value, number: numberInput.value, note: noteInput.value, page: location.href,
      }));
    });
    window.addEventListener("online", () => {
      if (!socket && wanted) {
        clearTimeout(timer);
        timer = 0;
        attempts = 0;
        connect();
      }
    });
    refresh();
    if (load("sessionStorage", "open")) open(false);
  }

  const start = () => {
    fetch(box + "/widget/" + encodeURIComponent(widgetId) + "/config", { mode: "cors", credentials: "omit" })
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(mount)
      .catch((error) => {
        console.warn(tag + " \"" + widgetId + "\" is not available on this page (" + location.origin + "): " + error.message);
      });
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
