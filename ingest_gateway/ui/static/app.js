// The analyst inbox's only script. Data from the server is only ever set as text
// (textContent, dataset, attributes): never parsed as markup.
"use strict";

(function () {
  const POLL_MILLISECONDS = 3000;
  const SEVERITIES = ["medium", "high", "critical"];

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function statusText(alert) {
    let text = alert.status;
    if (alert.resolution) text += " (" + alert.resolution + ")";
    if (alert.suppressed) text += " · suppressed";
    return text;
  }

  function alertRow(alert) {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.id = alert.id;
    const first = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/ui/alerts/" + encodeURIComponent(alert.id);
    link.textContent = when(alert.created_at);
    first.appendChild(link);
    tr.appendChild(first);
    const severity = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "sev sev-" + (SEVERITIES.includes(alert.severity) ? alert.severity : "medium");
    badge.textContent = alert.severity;
    severity.appendChild(badge);
    tr.appendChild(severity);
    tr.appendChild(cell(statusText(alert)));
    tr.appendChild(cell(alert.amount + " " + alert.currency, "num"));
    tr.appendChild(cell(alert.merchant, "text"));
    tr.appendChild(cell(alert.category, "text"));
    tr.appendChild(cell(alert.assignee || "", "text"));
    tr.appendChild(cell(alert.alert_message, "text"));
    return tr;
  }

  async function poll(table, live) {
    const params = new URLSearchParams(table.dataset.filters);
    if (table.dataset.newest) params.set("newer", table.dataset.newest);
    let response;
    try {
      response = await fetch("/ui/inbox/updates?" + params.toString(), {
        credentials: "same-origin", headers: { Accept: "application/json" }, redirect: "manual",
      });
    } catch (error) {
      return; // the gateway is restarting: the next poll tries again
    }
    if (response.type === "opaqueredirect" || response.status === 401) {
      window.location.assign("/ui/sign-in");
      return;
    }
    if (!response.ok) return;
    const body = await response.json();
    for (const [status, count] of Object.entries(body.counts)) {
      const target = document.querySelector('[data-count="' + CSS.escape(status) + '"]');
      if (target) target.textContent = count.toLocaleString("en");
    }
    if (body.alerts.length === 0) return;
    const tbody = table.tBodies[0];
    const empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    for (const alert of body.alerts.slice().reverse()) tbody.prepend(alertRow(alert));
    table.dataset.newest = body.newest;
    live.textContent = body.alerts.length + (body.alerts.length === 1 ? " new alert" : " new alerts");
  }

  function startPolling() {
    const table = document.getElementById("alerts");
    if (!table || table.dataset.poll !== "1") return;
    const live = document.getElementById("live");
    window.setInterval(function () { poll(table, live); }, POLL_MILLISECONDS);
  }

  function actionBody(form) {
    const kind = form.dataset.action;
    const value = function (name) { return form.elements[name].value; };
    switch (kind) {
      case "acknowledge": return { status: "acknowledged" };
      case "assign": return { assignee: value("assignee") };
      case "resolve": return { status: "resolved", resolution: value("resolution") };
      case "note": return { note: value("note") };
      case "suppress": {
        const scope = value("scope") === "category" ? "category" : "merchant";
        const body = { reason: value("reason"), duration_hours: Number(value("duration_hours")),
                       currency: form.dataset.currency };
        body[scope] = form.dataset[scope];
        return body;
      }
    }
    return null;
  }

  // If-Match: the version the page shows, so a change made meanwhile by someone else is
  // refused (412) rather than silently overwritten.
  async function send(form, alertId, etag) {
    const url = form.dataset.action === "suppress" ? "/suppressions" : "/alerts/" + encodeURIComponent(alertId);
    const method = form.dataset.action === "suppress" ? "POST" : "PATCH";
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() };
    if (method === "PATCH" && etag) headers["If-Match"] = etag;
    return fetch(url, { method: method, headers: headers, credentials: "same-origin",
                        body: JSON.stringify(actionBody(form)) });
  }

  async function problem(response) {
    try {
      const body = await response.json();
      const details = (body.detail || []).map(function (d) { return d.field + ": " + d.message; });
      return [body.error].concat(details).join("; ");
    } catch (error) {
      return "HTTP " + response.status;
    }
  }

  function startActions() {
    const section = document.getElementById("alert");
    const status = document.getElementById("action-status");
    if (!section || !status) return;
    for (const form of document.querySelectorAll("form[data-action]")) {
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        status.textContent = "Saving…";
        const response = await send(form, section.dataset.alertId, section.dataset.etag);
        if (response.ok) {
          status.textContent = "Saved.";
          window.location.reload();
        } else if (response.status === 412) {
          status.textContent = "Not saved: someone changed this alert meanwhile. Reload to see it.";
        } else {
          status.textContent = "Not saved: " + (await problem(response));
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    startPolling();
    startActions();
  });
})();
