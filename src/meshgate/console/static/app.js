// The console: one page per hash route; what the key's scopes do not allow is not offered.
import { api, key, signIn, signOut, tail } from "./api.js";
import { bars, lines } from "./chart.js";

const main = document.getElementById("main");
const PAGES = [
  ["overview", "Overview", "audit:read"],
  ["models", "Models", null],
  ["context", "Context", "context:read"],
  ["events", "Events", "events:read"],
  ["monitoring", "Monitoring", "audit:read"],
  ["audit", "Audit", "audit:read"],
  ["keys", "Keys", "admin"],
];
let me = null;
let stop = null; // ends the live tail when the page changes
const samples = {}; // model -> [[t, requests, errors, p95]] seen since the console opened

const can = (scope) => !scope || me.scopes.includes("admin") || me.scopes.includes(scope);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : String(c ?? ""));
  return el;
}

function table(columns, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function failure(error) {
  return h("p", { class: "bad", role: "alert" }, `${error.status || ""} ${error.message}`);
}

// --- sign in -------------------------------------------------------------------------------

function signInPage(message) {
  const input = h("input", { id: "key", type: "password", required: true, autocomplete: "off" });
  const form = h("form", { "aria-label": "Sign in", onsubmit: async (e) => {
    e.preventDefault();
    signIn(input.value.trim());
    await start();
  } }, h("label", { for: "key" }, "API key", input), h("button", { type: "submit" }, "Sign in"));
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").replaceChildren();
  show(h("h2", {}, "Sign in"), h("p", { class: "muted" },
    "The key stays in this tab (sessionStorage) and is sent as a bearer token."),
  message ? h("p", { class: "bad", role: "alert" }, message) : "", form);
  input.focus();
}

async function start() {
  if (!key()) return signInPage();
  try {
    me = await api("GET", "/v1/whoami");
  } catch (error) {
    signOut();
    return signInPage(error.status === 401 ? "That key was refused." : error.message);
  }
  document.getElementById("who").replaceChildren(`${me.key_id} (${me.tenant}) `,
    h("button", { type: "button", onclick: () => { signOut(); me = null; location.hash = ""; start(); } },
      "Sign out"));
  route();
}

function route() {
  if (!me) return;
  if (stop) { stop.abort(); stop = null; }
  const allowed = PAGES.filter(([, , scope]) => can(scope));
  const name = location.hash.replace("#/", "") || allowed[0][0];
  const page = allowed.find(([id]) => id === name) || allowed[0];
  document.getElementById("nav").replaceChildren(...allowed.map(([id, label]) =>
    h("a", { href: `#/${id}`, "aria-current": id === page[0] ? "page" : false }, label)));
  document.title = `${page[1]} - Meshgate console`;
  show(h("h2", {}, page[1]), h("p", { class: "muted" }, "Loading..."));
  PAGE_VIEWS[page[0]]().catch((error) => show(h("h2", {}, page[1]), failure(error)));
}

// --- pages ---------------------------------------------------------------------------------

async function overview() {
  const { models } = await api("GET", "/v1/registry/models");
  const slo = await api("GET", "/v1/slo");
  const cards = [];
  const now = Date.now() / 1000;
  for (const model of models) {
    let figures = null;
    try { figures = await api("GET", `/v1/monitoring/models/${encodeURIComponent(model.name)}`); }
    catch (error) { if (error.status !== 404) throw error; }
    const versions = figures ? figures.versions : [];
    const total = (f) => versions.reduce((n, v) => n + (v[f] || 0), 0);
    const p95 = Math.max(0, ...versions.map((v) => (v.latency_ms && v.latency_ms.p95) || 0));
    (samples[model.name] ||= []).push([now, total("requests"), total("errors"), p95]);
    const seen = samples[model.name];
    cards.push(h("section", { class: "card", "aria-label": model.name }, h("h3", {}, model.name),
      bars("per version", versions.map((v) => [`v${v.version} req`, v.requests])),
      bars("errors", versions.map((v) => [`v${v.version} err`, v.errors])),
      lines(`${model.name} over time`, [
        { name: "requests", points: seen.map((s) => [s[0], s[1]]) },
        { name: "errors", points: seen.map((s) => [s[0], s[2]]) },
        { name: "p95 ms", points: seen.map((s) => [s[0], s[3]]) },
      ]),
      versions.length ? "" : h("p", { class: "muted" }, "No predictions yet.")));
  }
  show(h("h2", {}, "Overview"),
    h("p", {}, `Last ${slo.window_seconds} s: ${slo.requests} requests, availability `,
      h("span", { class: slo.availability.met ? "ok" : "bad" },
        `${(slo.availability.value * 100).toFixed(2)}%`),
      `, p95 ${slo.p95_latency_ms.value ?? "-"} ms.`),
    h("button", { type: "button", onclick: route }, "Refresh"),
    h("div", { class: "cards" }, cards));
}

async function models() {
  const { models } = await api("GET", "/v1/registry/models");
  const sections = [];
  for (const m of models) {
    const history = (await api("GET", `/v1/registry/models/${encodeURIComponent(m.name)}/history`))
      .history.slice(-8).reverse();
    const { rollouts } = await api("GET", `/v1/registry/models/${encodeURIComponent(m.name)}/rollouts`);
    const running = rollouts.find((r) => ROLLOUT_ACTIONS[r.state]);
    const split = (m.traffic && m.traffic.split) || {};
    const inputs = m.versions.map((v) => h("label", { for: `w-${m.name}-${v.version}` },
      `v${v.version} %`, h("input", { id: `w-${m.name}-${v.version}`, name: v.version,
        type: "number", min: 0, max: 100, value: split[v.version] ?? 0, size: 4 })));
    const status = h("p", { "aria-live": "polite" });
    // A running rollout sets the split at every step (the API refuses a change meanwhile).
    const editor = running ? h("p", { class: "muted" }, `Traffic is set by rollout ${running.id} while it runs.`)
      : can("registry:write") ? h("form", { "aria-label": `Traffic of ${m.name}`,
      onsubmit: async (e) => {
        e.preventDefault();
        const weights = Object.fromEntries(new FormData(e.target).entries());
        const body = { ...(m.traffic || {}), split: Object.fromEntries(
          Object.entries(weights).map(([v, w]) => [v, Number(w)]).filter(([, w]) => w > 0)) };
        try {
          await api("PUT", `/v1/registry/models/${encodeURIComponent(m.name)}/traffic`, body);
          status.className = "ok";
          status.textContent = "Traffic saved.";
          setTimeout(route, 600);
        } catch (error) {
          status.className = "bad";
          status.textContent = error.message;
        }
      } }, inputs, h("button", { type: "submit" }, "Save split")) : "";
    sections.push(h("section", { class: "card", "aria-label": m.name },
      h("h3", {}, `${m.name} (${m.task})`),
      table(["version", "provider", "registered"], m.versions.map((v) =>
        [v.version, v.provider.type, v.created_at])),
      h("p", {}, "Aliases: ", Object.entries(m.aliases).map(([a, v]) => `${a}=${v}`).join(", ") || "-"),
      h("p", {}, "Split: ", Object.entries(split).map(([v, w]) => `v${v} ${w}%`).join(", ") || "-",
        m.traffic && m.traffic.fallback.length ? `; fallback ${m.traffic.fallback.join(", ")}` : ""),
      editor, status, rolloutsPanel(m, rollouts),
      h("details", {}, h("summary", {}, "History"),
        table(["at", "actor", "change"], history.map((c) => [c.at, c.actor, c.change])))));
  }
  show(h("h2", {}, "Models"), h("div", { class: "cards" }, sections));
}

// --- rollouts: where each one is, what the latest look saw, and why it moved or held ---------

// The hand controls the API accepts in each state (src/meshgate/delivery/rollout_service.py).
const ROLLOUT_ACTIONS = {
  pending: ["promote", "abort"],
  progressing: ["pause", "promote", "abort"],
  paused: ["resume", "promote", "abort"],
};
const ACTION_LABELS = { pause: "Pause", resume: "Resume", promote: "Promote", abort: "Abort" };
// Promote and abort cannot be undone from here: each asks first, naming what it will do.
const ACTION_CONFIRM = {
  promote: (r) => `Promote v${r.candidate}? It takes all traffic and becomes production; the rollout ends.`,
  abort: (r) => `Abort this rollout? Traffic returns to v${r.baseline}; the rollout ends.`,
};
const ENDED_WELL = { promoted: "ok", rolled_back: "bad", aborted: "bad" };

const figure = (v, digits = 4) => (v === null || v === undefined ? "-"
  : typeof v === "number" && !Number.isInteger(v) ? v.toFixed(digits) : String(v));

function rolloutWhere(r) {
  if (r.state === "promoted") return "candidate 100%";
  if (r.state === "rolled_back" || r.state === "aborted")
    return r.current_step === null ? "stopped before its first step"
      : `stopped at step ${r.step + 1} of ${r.steps.length}; traffic back to the baseline`;
  if (r.phase === "shadow") return `shadow (candidate gets copies, no traffic)`;
  if (r.phase === "switched") return `switched: candidate ${r.weight}%`;
  if (r.current_step === null) return "not started";
  return `step ${r.step + 1} of ${r.steps.length}: candidate ${r.weight}%`;
}

// Why the rollout is where it is: its last move, and for a running one why it has not moved.
function rolloutWhy(r) {
  const why = [`Last move: ${r.reason || "-"}`];
  const f = r.figures || {};
  if (r.state === "progressing" && r.evaluated_at) {
    const worse = Object.entries(f.checks || {}).filter(([, c]) => c.worse).map(([n]) => n);
    if (worse.length) why.push(`candidate worse on ${worse.join(", ")}`);
    else if ((f.step_requests ?? 0) < r.min_requests)
      why.push(`holding: ${f.step_requests ?? 0} of ${r.min_requests} candidate calls at this step`);
    else why.push("no check failed; advancing at the next look");
  } else if (r.state === "paused") why.push("paused by hand: it stays at this step until resumed");
  return why.join("; ") + ".";
}

function checkLine(name, c) {
  const d = c.difference;
  const detail = d ? `difference ${figure(d.estimate)} [${figure(d.lower)}, ${figure(d.upper)}]`
    : c.psi ? `PSI ${Object.entries(c.psi).map(([k, v]) => `${k} ${figure(v, 3)}`).join(", ")}`
    : c.candidate && typeof c.candidate === "object"
      ? `p95 ${figure(c.candidate.estimate, 1)} vs ${figure(c.baseline.estimate, 1)} ms`
      : c.estimate !== undefined ? `${figure(c.estimate)} [${figure(c.lower)}, ${figure(c.upper)}]` : "";
  return [name, h("span", { class: c.worse ? "bad" : "ok" }, c.worse ? "worse" : "ok"), detail];
}

function rolloutFigures(r) {
  const f = r.figures || {};
  if (!f.candidate) return h("p", { class: "muted" }, "No analysis yet.");
  const rows = [["calls", "requests"], ["errors", "errors"], ["error rate", "error_rate"],
    ["p95 ms", "p95_ms"], ["feedback", "feedback"], ["accuracy", "accuracy"], ["agreement", "agreement"]]
    .filter(([, k]) => k in f.candidate || k in (f.baseline || {}))
    .map(([label, k]) => [label, figure(f.candidate[k]), figure((f.baseline || {})[k])]);
  const checks = Object.entries(f.checks || {}).map(([n, c]) => checkLine(n, c));
  return h("div", {},
    h("p", { class: "muted" }, `Latest look ${r.evaluated_at}; ${f.step_requests ?? 0} candidate calls at this step.`),
    table(["figure", `candidate v${r.candidate}`, `baseline v${r.baseline}`], rows),
    checks.length ? table(["check", "verdict", "figures"], checks)
      : h("p", { class: "muted" }, "Too few calls for any check yet."));
}

function rolloutControls(m, r, status) {
  if (!can("registry:write")) return "";
  const actions = ROLLOUT_ACTIONS[r.state] || [];
  return h("div", { class: "actions" }, actions.map((action) => h("button", { type: "button",
    onclick: async () => {
      if (ACTION_CONFIRM[action] && !window.confirm(ACTION_CONFIRM[action](r))) return;
      try {
        const path = `/v1/registry/models/${encodeURIComponent(m.name)}/rollouts/${encodeURIComponent(r.id)}`;
        const moved = await api("POST", `${path}/${action}`);
        status.className = "ok";
        status.textContent = `Rollout ${r.id} is ${moved.state}.`;
        setTimeout(route, 600);
      } catch (error) {
        status.className = "bad";
        status.textContent = error.message;
      }
    } }, ACTION_LABELS[action])));
}

function rolloutsPanel(m, rollouts) {
  const status = h("p", { "aria-live": "polite" });
  const shown = rollouts.slice(0, 5).map((r) => h("article", { class: "rollout",
    "aria-label": `Rollout ${r.id}` },
    h("p", {}, h("strong", {}, `${r.mode} v${r.candidate} against v${r.baseline}: `),
      h("span", { class: `state ${ENDED_WELL[r.state] || ""}` }, r.state.replace("_", " ")),
      ` - ${rolloutWhere(r)}`),
    h("p", {}, rolloutWhy(r)),
    rolloutFigures(r),
    rolloutControls(m, r, status),
    h("details", {}, h("summary", {}, "Steps"),
      table(["at", "move", "step", "candidate %", "by", "reason"], r.steps_analysis.slice().reverse()
        .map((s) => [s.at, s.transition, s.step >= 0 ? s.step + 1 : "-", s.weight, s.actor, s.reason])))));
  return h("div", { class: "rollouts" }, h("h4", {}, "Rollouts"),
    shown.length ? shown : h("p", { class: "muted" }, "No rollouts."), status);
}

async function context() {
  const out = h("div", { "aria-live": "polite" });
  const user = h("input", { id: "user", required: true });
  const consumer = h("input", { id: "consumer", placeholder: "model:iris" });
  const lookup = async (e) => {
    e.preventDefault();
    const id = encodeURIComponent(user.value.trim());
    try {
      const profile = await api("GET", `/v1/context/users/${id}`);
      const parts = [h("h3", {}, "Profile"), h("pre", {}, JSON.stringify(profile, null, 2))];
      if (consumer.value.trim()) {
        const seen = await api("POST", "/v1/context/resolve",
          { consumer: consumer.value.trim(), user_id: user.value.trim() });
        parts.push(h("h3", {}, `What ${seen.consumer} may see`),
          h("pre", { id: "preview" }, JSON.stringify(seen.context, null, 2)));
      }
      out.replaceChildren(...parts);
    } catch (error) { out.replaceChildren(failure(error)); }
  };
  const { policies } = await api("GET", "/v1/context/policies");
  show(h("h2", {}, "Context explorer"),
    h("form", { "aria-label": "Look up a user", onsubmit: lookup },
      h("label", { for: "user" }, "User id", user),
      h("label", { for: "consumer" }, "Preview as consumer (optional)", consumer),
      h("button", { type: "submit" }, "Look up")), out,
    h("h3", {}, "Consumer policies"),
    table(["consumer", "may see", "source"], policies.map((p) => [p.consumer, p.allow.join(", "), p.source])));
}

async function events() {
  const list = h("ul", { id: "tail", "aria-live": "polite" });
  const type = h("input", { id: "etype", placeholder: "e.g. meshgate.model.traffic.changed" });
  const subject = h("input", { id: "esubject" });
  const state = h("p", { class: "muted" });
  const follow = (e) => {
    if (e) e.preventDefault();
    if (stop) stop.abort();
    stop = new AbortController();
    list.replaceChildren();
    const query = new URLSearchParams();
    if (type.value.trim()) query.set("type", type.value.trim());
    if (subject.value.trim()) query.set("subject", subject.value.trim());
    const recent = api("GET", `/v1/events?${query}&limit=1000`);
    recent.then(({ events }) => {
      events.slice(-20).forEach(add);
      const after = events.length ? events[events.length - 1].sequence : 0;
      query.set("after", after);
      state.textContent = "Following live events.";
      return tail(`/v1/events/stream?${query}`, add, stop.signal);
    }).catch((error) => { if (error.name !== "AbortError") state.replaceChildren(failure(error)); });
  };
  function add(event) {
    list.prepend(h("li", {}, `#${event.sequence} ${event.time} ${event.type} `,
      h("span", { class: "muted" }, event.subject || "")));
    while (list.children.length > 200) list.lastChild.remove();
  }
  show(h("h2", {}, "Events"), h("form", { "aria-label": "Filter events", onsubmit: follow },
    h("label", { for: "etype" }, "Type", type), h("label", { for: "esubject" }, "Subject", subject),
    h("button", { type: "submit" }, "Follow")), state, list);
  follow();
}

async function monitoring() {
  const { models } = await api("GET", "/v1/registry/models");
  const cards = [];
  for (const m of models) {
    let figures;
    try { figures = await api("GET", `/v1/monitoring/models/${encodeURIComponent(m.name)}`); }
    catch (error) { if (error.status === 404) continue; throw error; }
    for (const v of figures.versions) {
      const drift = Object.entries((v.drift && v.drift.features) || {});
      cards.push(h("section", { class: "card", "aria-label": `${m.name} v${v.version}` },
        h("h3", {}, `${m.name} v${v.version}`),
        h("p", {}, `accuracy ${v.accuracy.value ?? "-"} from ${v.accuracy.feedback} feedback; `,
          h("span", { class: v.drift.drifted ? "bad" : "ok" }, v.drift.drifted ? "drifted" : "no drift")),
        bars("drift statistic per feature", drift.map(([f, d]) => [f, d.statistic ?? d.p_value ?? 0])),
        bars("latency ms", [["p50", v.latency_ms.p50], ["p95", v.latency_ms.p95], ["p99", v.latency_ms.p99]])));
    }
  }
  show(h("h2", {}, "Monitoring"),
    cards.length ? h("div", { class: "cards" }, cards) : h("p", {}, "No predictions recorded yet."));
}

async function audit() {
  const result = h("div", { "aria-live": "polite" });
  const verify = async () => {
    try {
      const v = await api("GET", "/v1/audit/verify");
      result.replaceChildren(h("p", { id: "verdict", class: v.ok ? "ok" : "bad" }, v.ok
        ? `Chain verified: ${v.records} records, ${v.checkpoints.count} signed checkpoints.`
        : `Chain broken at record ${v.first_bad.sequence}: ${v.first_bad.reason}`));
    } catch (error) { result.replaceChildren(failure(error)); }
  };
  const page = await api("GET", "/v1/audit?limit=100");
  show(h("h2", {}, "Audit"), h("button", { type: "button", onclick: verify }, "Verify the chain"),
    result, table(["#", "time", "actor", "tenant", "action", "resource"],
      page.records.slice().reverse().map((r) => [r.sequence, r.time, r.actor, r.tenant, r.action, r.resource])));
}

async function keys() {
  const { keys } = await api("GET", "/v1/admin/keys");
  show(h("h2", {}, "Keys"), table(["id", "tenant", "prefix", "scopes", "created", "revoked"],
    keys.map((k) => [k.id, k.tenant, k.prefix, k.scopes.join(", "), k.created_at, k.revoked_at || ""])));
}

const PAGE_VIEWS = { overview, models, context, events, monitoring, audit, keys };
window.addEventListener("hashchange", route);
start();
