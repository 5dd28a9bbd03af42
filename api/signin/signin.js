// Signs in with POST /api/auth/login, then opens the page named by the
// "next" query parameter when it is a path on this server.
"use strict";

function nextPath() {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  if (next.startsWith("/")) {
    // Resolve the path the way the browser will, which drops tabs and
    // line breaks, and go there only when it stays on this origin.
    const url = new URL(next, window.location.origin);
    // A path that resolves to "//host", such as "/.//host", would be
    // read as another host once returned as a path.
    if (url.origin === window.location.origin && !url.pathname.startsWith("//")) {
      return url.pathname + url.search + url.hash;
    }
  }
  return "/docs";
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("signin");
  const error = document.getElementById("error");
  const submit = document.getElementById("submit");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const response = await fetch("/api/auth/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          email: form.elements.email.value,
          password: form.elements.password.value,
        }),
      });
      if (response.ok) {
        window.location.assign(nextPath());
        return;
      }
      let message = "Sign-in failed (HTTP " + response.status + ").";
      try {
        const problem = await response.json();
        if (problem.detail) {
          message = problem.detail;
        }
      } catch (ignored) {
        // The body was not problem details; keep the status message.
      }
      error.textContent = message;
      error.hidden = false;
    } catch (err) {
      error.textContent = "The server could not be reached: " + err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
});
