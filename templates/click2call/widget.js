/* Click2call banner: "call me back". Self-contained; renders where its <script> tag is.
   Everything it shows goes through textContent: no markup is ever built from data. */
(function () {
  "use strict";
  var CONFIG = {{ config_json|safe }};
  var POLL_MS = 1500;
  var PROGRESS = {
    "waiting": "Your request is waiting for a line\u2026",
    "waiting to try again": "No luck this time, we will try again shortly\u2026",
    "calling you": "Calling you now\u2026",
    "calling the company": "Connecting you to us\u2026",
    "connected": "Connected. Enjoy the call!",
    "completed": "Call finished. Thank you!",
    "failed: you did not answer": "We could not reach you. We will call you back.",
    "failed: the company did not answer": "We could not connect you. We will call you back."
  };
  var CSS = [
    ":host{all:initial;display:block;font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330}",
    ".c2c{box-sizing:border-box;max-width:340px;border:1px solid #c9d1e0;border-radius:10px;padding:16px;background:#fff;box-shadow:0 2px 8px rgba(0,0,0,.08)}",
    "h2{font-size:17px;margin:0 0 10px}",
    "label{display:block;margin:8px 0 2px;font-size:13px;color:#3a4356}",
    "input[type=tel],input[type=text],textarea{box-sizing:border-box;width:100%;padding:7px 9px;border:1px solid #aab4c8;border-radius:6px;font:inherit}",
    "textarea{min-height:54px;resize:vertical}",
    ".consent{display:flex;gap:8px;align-items:flex-start;margin-top:10px;font-size:13px}",
    ".consent input{margin-top:3px}",
    "button{margin-top:12px;width:100%;padding:9px;border:0;border-radius:6px;background:#1f6feb;color:#fff;font:inherit;font-weight:600;cursor:pointer}",
    "button[disabled]{background:#8aa8d8;cursor:default}",
    ".error{color:#b42318;font-size:13px;margin-top:8px;white-space:pre-line}",
    ".status{font-size:16px;margin:6px 0}",
    ".status[data-final=true]{font-weight:600}",
    "[hidden]{display:none!important}"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) { node.textContent = text; }
    return node;
  }

  var script = document.currentScript;
  var host = el("div", {"class": "c2c-widget"});
  if (script && script.parentNode) { script.parentNode.insertBefore(host, script.nextSibling); }
  else { document.body.appendChild(host); }
  var root = host.attachShadow ? host.attachShadow({mode: "open"}) : host;
  root.appendChild(el("style", {}, CSS));
  var box = el("div", {"class": "c2c", part: "box"});
  root.appendChild(box);

  var form = el("form", {novalidate: ""});
  form.appendChild(el("h2", {}, "Call me back"));
  var fields = {};
  function field(name, label, tag, attrs) {
    var id = "c2c-" + name;
    form.appendChild(el("label", {"for": id}, label));
    fields[name] = el(tag, Object.assign({id: id, name: name}, attrs));
    form.appendChild(fields[name]);
  }
  field("number", "Your phone number", "input", {type: "tel", autocomplete: "tel", maxlength: "40", required: ""});
  field("name", "Your name (optional)", "input", {type: "text", autocomplete: "name", maxlength: "100"});
  field("note", "What is it about? (optional)", "textarea", {maxlength: "500"});
  var consentRow = el("div", {"class": "consent"});
  fields.consent = el("input", {type: "checkbox", id: "c2c-consent", name: "consent"});
  consentRow.appendChild(fields.consent);
  consentRow.appendChild(el("label", {"for": "c2c-consent"}, "I agree to be called at this number."));
  form.appendChild(consentRow);
  var button = el("button", {type: "submit"}, "Call me");
  form.appendChild(button);
  var errorLine = el("div", {"class": "error", role: "alert"});
  form.appendChild(errorLine);
  box.appendChild(form);
  var progress = el("div", {"class": "progress", hidden: ""});
  box.appendChild(progress);

  // After a final status the visitor may ask again: the form comes back with what they typed.
  function showForm() {
    progress.hidden = true;
    progress.textContent = "";
    form.hidden = false;
    button.disabled = false;
    fields.number.focus();
  }

  function showError(text) { errorLine.textContent = text; }

  function refusal(status, body, response) {
    if (status === 429) {
      var wait = parseInt(response.headers.get("Retry-After") || "0", 10);
      var minutes = Math.max(1, Math.ceil(wait / 60));
      return "Too many requests. Please try again in " + minutes + " minute" + (minutes > 1 ? "s" : "") + ".";
    }
    if (body && typeof body.detail === "string") {
      var lines = [body.detail];
      if (body.fields && typeof body.fields === "object") {
        Object.keys(body.fields).forEach(function (name) {
          var messages = body.fields[name];
          if (Array.isArray(messages)) { lines.push(name + ": " + messages.join(" ")); }
        });
      }
      return lines.join("\n");
    }
    return "The request could not be sent (" + status + ").";
  }

  function showProgress(statusUrl) {
    form.hidden = true;
    progress.textContent = "";
    progress.hidden = false;
    progress.appendChild(el("h2", {}, "Call me back"));
    var line = el("p", {"class": "status", role: "status", "aria-live": "polite"}, PROGRESS.waiting);
    progress.appendChild(line);
    function poll() {
      fetch(statusUrl, {credentials: "omit", cache: "no-store"}).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (state) {
        if (state && typeof state.progress === "string") {
          line.textContent = PROGRESS[state.progress] || state.progress;
          line.setAttribute("data-progress", state.progress);
          if (state.final) {
            line.setAttribute("data-final", "true");
            var again = el("button", {type: "button", "class": "again"}, "Ask for another call");
            again.addEventListener("click", showForm);
            progress.appendChild(again);
            return;
          }
        }
        setTimeout(poll, POLL_MS);
      }, function () { setTimeout(poll, POLL_MS * 2); });
    }
    poll();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    showError("");
    if (!fields.number.value.trim()) { showError("Enter your phone number."); return; }
    if (!fields.consent.checked) { showError("Please agree to be called."); return; }
    button.disabled = true;
    var payload = {
      number: fields.number.value,
      name: fields.name.value,
      note: fields.note.value,
      consent: true
    };
    fetch(CONFIG.api, {
      method: "POST",
      credentials: "omit",
      headers: {"Content-Type": "application/json", "X-Campaign-Key": CONFIG.key},
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.ok && body && typeof body.status_url === "string") {
          showProgress(body.status_url);
        } else {
          button.disabled = false;
          showError(refusal(response.status, body, response));
        }
      });
    }, function () {
      button.disabled = false;
      showError("The service could not be reached. Please try again later.");
    });
  });
})();
