// The Service Manager's only script, progressive enhancement: every page works without it.
// - A form being sent disables its buttons and says what it is doing, so a slow action shows progress
//   instead of a page that seems frozen and invites a second click.
// - The tenant export (a form with data-export) fetches page by page, shows how many records it has,
//   and hands the browser one file at the end; without the script the form downloads at most 20 pages.
// - A form with data-confirm-field keeps its submit button disabled until the confirmation field
//   repeats the field named by data-confirm-with (erasure). The server checks it again.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-confirm-field]").forEach(function (form) {
    var confirm = form.querySelector("[name='" + form.dataset.confirmField + "']");
    var target = document.getElementById(form.dataset.confirmWith);
    var button = form.querySelector("button[type=submit]");
    function check() { button.disabled = !confirm.value || confirm.value.trim() !== target.value.trim(); }
    confirm.addEventListener("input", check); target.addEventListener("input", check); check();
  });
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      // A download leaves the page where it is: its buttons stay usable.
      if (e.submitter && e.submitter.value === "export") return;
      var status = document.createElement("p");
      status.setAttribute("role", "status");
      status.textContent = form.dataset.busy;
      form.appendChild(status);
      setTimeout(function () { form.querySelectorAll("button").forEach(function (b) { b.disabled = true; }); }, 0);
    });
  });
  var exportForm = document.querySelector("form[data-export]");
  if (exportForm) {
    exportForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var status = document.getElementById("export-progress");
      var button = exportForm.querySelector("button");
      var csrf = exportForm.querySelector("[name=csrf]").value;
      var parts = [], records = 0;
      button.disabled = true;
      function page(token) {
        var body = new URLSearchParams({csrf: csrf, page: "1", pageToken: token || ""});
        return fetch(exportForm.action, {method: "POST", body: body, credentials: "same-origin"}).then(function (r) {
          if (!r.ok) { throw new Error("the export stopped (" + r.status + ")"); }
          var next = r.headers.get("X-Next-Page-Token");
          return r.text().then(function (text) {
            parts.push(text);
            records += text.split("\n").length - 1;
            status.textContent = records + " records so far…";
            return next ? page(next) : null;
          });
        });
      }
      page("").then(function () {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(new Blob(parts, {type: "application/x-ndjson"}));
        a.download = exportForm.dataset.export;
        document.body.appendChild(a);
        a.click();
        status.textContent = "Done: " + records + " records.";
        status.id = "export-done";
      }).catch(function (err) {
        status.textContent = err.message + "; nothing was downloaded. Try again.";
      }).finally(function () { button.disabled = false; });
    });
  }
});
