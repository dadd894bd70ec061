// The Service Manager's only script, progressive enhancement: every page works without it.
// - A form being sent disables its buttons and says what it is doing, so a slow action shows progress
//   instead of a page that seems frozen and invites a second click.
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
});
