// Live status: one EventSource on /api/events (a relay of the box's MQTT state); no polling.
const $ = (id) => document.getElementById(id);

function badge(el, state) {
  el.textContent = state;
  el.className = `badge state-${state}`;
}

function setModem(m) {
  $("modem-sim").textContent = m.sim || "—";
  $("modem-registered").textContent = m.registered ? "registered" : "not registered";
  $("modem-operator").textContent = m.operator || "—";
  $("modem-signal").textContent = m.signal_dbm == null ? "—" : `${m.signal_dbm} dBm`;
}

function setCallState(c) {
  badge($("call-state"), c.state || "idle");
  $("call-caller").textContent = c.caller || (c.channel === "browser" ? "test call from the web page" : "");
}

function addLine(role, text) {
  const li = document.createElement("li");
  li.className = role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role;
  li.append(who, document.createTextNode(" " + text));
  $("transcript").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function setRow(tableId, topic, cells) {
  const body = $(tableId).tBodies[0];
  let row = [...body.rows].find((r) => r.dataset.topic === topic);
  if (!row) {
    row = body.insertRow();
    row.dataset.topic = topic;
    [...body.rows].sort((a, b) => a.dataset.topic.localeCompare(b.dataset.topic)).forEach((r) => body.append(r));
  }
  row.replaceChildren(...cells.map(([text, cls, isBadge]) => {
    const td = document.createElement("td");
    if (isBadge) {
      const span = document.createElement("span");
      badge(span, text);
      td.append(span);
    } else {
      td.textContent = text;
      if (cls) td.className = cls;
    }
    return td;
  }));
}

function applyState(topic, p) {
  if (topic === "modem/state") setModem(p || {});
  else if (topic === "call/state") setCallState(p || {});
  else if (topic.startsWith("engines/")) {
    setRow("engines", topic, [[topic.split("/")[1]], [p.state, "", true], [p.backend || "—"], [p.device || "—"], [p.detail || "", "muted"]]);
  } else if (topic.startsWith("services/")) {
    setRow("services", topic, [[topic.split("/")[1]], [p.state, "", true], [String(p.restarts ?? 0)], [p.detail || "", "muted"]]);
  }
}

function applyCallEvent(e) {
  if (e.type === "ringing" || e.type === "answered") {
    if ($("transcript").dataset.callId !== e.call_id) {
      $("transcript").replaceChildren();
      $("transcript").dataset.callId = e.call_id;
      $("call-ended").textContent = "";
    }
  } else if (e.type === "utterance") {
    addLine(e.role, e.text);
  } else if (e.type === "ended") {
    $("call-ended").textContent = `Ended: ${(e.reason || "").replaceAll("_", " ")}${e.summary ? " — " + e.summary : ""}`;
  }
}

function setRecording(alert) {
  const el = $("recording-alert");
  el.textContent = alert || "";
  el.hidden = !alert;
}

function setLive(connected) {
  const live = $("live");
  live.textContent = connected ? "live" : "bus offline";
  live.className = `badge ${connected ? "ok" : "bad"}`;
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("snapshot", (msg) => {
    const snap = JSON.parse(msg.data);
    setLive(snap.bus_connected);
    setRecording(snap.recording_alert);
    for (const [topic, payload] of Object.entries(snap.state)) applyState(topic, payload);
    $("transcript").replaceChildren();
    $("transcript").dataset.callId = snap.call.call_id || "";
    for (const line of snap.call.lines) addLine(line.role, line.text);
  });
  source.addEventListener("state", (msg) => {
    const { topic, payload } = JSON.parse(msg.data);
    applyState(topic, payload);
  });
  source.addEventListener("call", (msg) => applyCallEvent(JSON.parse(msg.data)));
  source.addEventListener("bus", (msg) => setLive(JSON.parse(msg.data).connected));
  source.addEventListener("recording", (msg) => setRecording(JSON.parse(msg.data).alert));
  source.onerror = () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
  };
}

connect();
