// The page: one EventSource feeds every panel; forms call the console's JSON API.
"use strict";
const $ = (sel) => document.querySelector(sel);
let catalogue = [];
let stream = null;

function token() { return $("#token").value.trim(); }
function who() { return $("#who").value.trim(); }

function remember() {
  sessionStorage.setItem("chaoslab.token", token());
  localStorage.setItem("chaoslab.who", who());
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function clock(epoch) { return new Date(epoch * 1000).toLocaleTimeString(); }

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers["X-Chaos-Token"] = token();
  const resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((data.error && data.error.message) || `HTTP ${resp.status}`);
  return data;
}

function say(target, text, ok) {
  const el = $(target);
  el.textContent = text;
  el.className = "msg " + (ok ? "ok" : "error");
}

// -- faults --------------------------------------------------------------------------
function fillFaultChoices() {
  const service = $("#f-service").value;
  const select = $("#f-fault");
  const before = select.value;
  select.replaceChildren(...catalogue.filter((f) => f.services.includes(service)).map((f) => new Option(f.name, f.name)));
  if ([...select.options].some((o) => o.value === before)) select.value = before;
  showHint();
}

function showHint() {
  const f = catalogue.find((x) => x.name === $("#f-fault").value);
  if (!f) return;
  const bounds = { bool: "true/false", services: "downstream list", status: "500/502/503/504" }[f.kind] || `${f.low} to ${f.high} ${f.unit}`;
  $("#f-hint").textContent = `${f.description} (${bounds}). CLI: chaoslab chaos set ${$("#f-service").value} ${f.name} <value> --ttl <s>`;
}

function drawFaults(faults) {
  const body = $("#faults tbody");
  const audit = $("#audit tbody");
  body.replaceChildren();
  audit.replaceChildren();
  const hidden = $("#faults-hidden");
  if (!faults) { hidden.hidden = true; return; }
  hidden.hidden = !faults.hidden;
  hidden.textContent = faults.message;
  for (const f of faults.faults) {
    const row = document.createElement("tr");
    row.dataset.key = f.key;
    cell(row, f.service + (f.replica === null ? "" : ` #${f.replica}`) + (f.route ? ` ${f.route}` : ""));
    cell(row, f.fault);
    cell(row, JSON.stringify(f.value));
    const ttl = cell(row, f.ttl_s === null ? "never" : `${Math.round(f.ttl_s)}s`);
    if (f.ttl_s !== null) { ttl.dataset.expires = String(Date.now() / 1000 + f.ttl_s); ttl.className = "ttl"; }
    const button = document.createElement("button");
    button.textContent = "Clear";
    button.className = "clear";
    button.onclick = () => clearFaults(f.service, f.fault);
    row.appendChild(document.createElement("td")).appendChild(button);
    body.appendChild(row);
  }
  for (const e of faults.audit.slice(0, 10)) {
    const row = document.createElement("tr");
    cell(row, clock(Number(e.at)));
    cell(row, e.action);
    cell(row, e.key);
    cell(row, e.value);
    cell(row, e.who);
    audit.appendChild(row);
  }
}

function countDown() {
  for (const td of document.querySelectorAll("td.ttl")) {
    td.textContent = `${Math.max(0, Math.round(Number(td.dataset.expires) - Date.now() / 1000))}s`;
  }
}

async function setFault(event) {
  event.preventDefault();
  remember();
  const ttl = $("#f-ttl").value.trim();
  const body = { service: $("#f-service").value, fault: $("#f-fault").value, value: $("#f-value").value.trim(), who: who() };
  if (ttl) body.ttl_s = Number(ttl);
  try {
    const data = await api("PUT", "/api/faults", body);
    say("#fault-msg", `set ${data.set.key} = ${JSON.stringify(data.set.value)}`, true);
  } catch (err) {
    say("#fault-msg", err.message, false);
  }
}

async function clearFaults(service, fault) {
  remember();
  const query = new URLSearchParams();
  if (service) query.set("service", service);
  if (fault) query.set("fault", fault);
  if (who()) query.set("who", who());
  try {
    const data = await api("DELETE", "/api/faults?" + query, null);
    say("#fault-msg", `cleared ${data.cleared} fault(s)`, true);
  } catch (err) {
    say("#fault-msg", err.message, false);
  }
}

// -- alerts and drills ---------------------------------------------------------------
function drawAlerts(alerts, events) {
  const list = $("#alerts");
  list.replaceChildren();
  if (alerts === null) {
    list.appendChild(document.createElement("li")).textContent = "Alertmanager does not answer";
  } else if (!alerts.length) {
    list.appendChild(document.createElement("li")).textContent = "no alert";
  }
  for (const a of alerts || []) {
    const li = document.createElement("li");
    li.dataset.alert = a.name;
    li.dataset.severity = a.severity;
    li.textContent = `${a.name} (${a.severity}, ${a.state}) since ${new Date(a.since).toLocaleTimeString()}: ${a.summary}`;
    list.appendChild(li);
  }
  const feed = $("#alert-events");
  feed.replaceChildren();
  for (const e of events) {
    const li = document.createElement("li");
    li.dataset.event = e.event;
    li.textContent = `${clock(e.at)} ${e.event} ${e.name} (${e.severity})`;
    feed.appendChild(li);
  }
}

function drawDrill(drill) {
  const run = drill.run;
  const steps = $("#drill-steps");
  steps.replaceChildren();
  for (const step of drill.steps) {
    const li = document.createElement("li");
    li.textContent = step;
    const status = run ? run.steps[step] || "" : "";
    li.dataset.status = status.startsWith("failed") ? "failed" : status;
    if (status.startsWith("failed")) li.title = status;
    steps.appendChild(li);
  }
  const result = $("#drill-result");
  result.replaceChildren();
  $("#d-stop").hidden = !run || run.state !== "running";
  if (!run) return;
  result.textContent = `${run.incident}: ${run.state}${run.detail ? " (" + run.detail + ")" : ""} — ${run.who}. `;
  if (run.state === "passed" || run.state === "failed") {
    const link = document.createElement("a");
    link.href = run.report;
    link.textContent = "report";
    link.target = "_blank";
    result.appendChild(link);
  }
}

async function launchDrill(event) {
  event.preventDefault();
  remember();
  try {
    await api("POST", "/api/drills", { incident: $("#d-incident").value, who: who() });
    say("#drill-msg", `launched ${$("#d-incident").value}`, true);
  } catch (err) {
    say("#drill-msg", err.message, false);
  }
}

async function stopDrill() {
  remember();
  say("#drill-msg", "stopping: the drill rolls its faults back…", true);
  try {
    const data = await api("DELETE", "/api/drills", null);
    say("#drill-msg", data.run ? `${data.run.incident}: ${data.run.state}` : "no drill ran", true);
  } catch (err) {
    say("#drill-msg", err.message, false);
  }
}

// -- the live feed -------------------------------------------------------------------
function draw(state) {
  $("#profile").textContent = `${state.profile} profile`;
  drawTopology($("#topology"), state.boxes, state.edges);
  $("#status-error").textContent = state.status_error || "";
  drawFaults(state.faults);
  if (state.faults_error) say("#fault-msg", state.faults_error, false);
  $("#figures-error").textContent = state.figures_error || "";
  for (const key of ["success_rate", "p99_s", "outbox_pending"]) drawChart($(`#chart-${key}`), state.history, key);
  drawAlerts(state.alerts, state.alert_events);
  drawDrill(state.drill);
  document.body.dataset.updated = String(state.at);
}

function connect() {
  if (stream) stream.close();
  const query = token() ? "?" + new URLSearchParams({ token: token() }) : "";
  stream = new EventSource("/api/stream" + query);
  stream.addEventListener("snapshot", (e) => {
    $("#link").textContent = "live";
    $("#link").className = "pill up";
    draw(JSON.parse(e.data));
  });
  stream.onerror = () => { $("#link").textContent = "reconnecting…"; $("#link").className = "pill down"; };
}

async function start() {
  $("#token").value = sessionStorage.getItem("chaoslab.token") || "";
  $("#who").value = localStorage.getItem("chaoslab.who") || "";
  catalogue = await (await fetch("/api/catalogue")).json();
  const services = [...new Set(catalogue.flatMap((f) => f.services))];
  $("#f-service").replaceChildren(...services.map((s) => new Option(s, s)));
  $("#f-service").onchange = fillFaultChoices;
  $("#f-fault").onchange = showHint;
  fillFaultChoices();
  $("#fault-form").onsubmit = setFault;
  $("#f-clear-all").onclick = () => clearFaults(null, null);
  const drills = await (await fetch("/api/drills")).json();
  $("#d-incident").replaceChildren(...drills.incidents.map((i) => new Option(`${i.id} — ${i.title}`, i.id)));
  $("#drill-form").onsubmit = launchDrill;
  $("#d-stop").onclick = stopDrill;
  $("#token").onchange = () => { remember(); connect(); };
  connect();
  setInterval(countDown, 1000);
}

start();
