// The hosted quote form, enhanced. Without this file the form works as plain
// HTML (post, then a page with the errors or the confirmation); with it:
// - the conditions offered and the disclaimers that apply follow the chosen
//   destination and condition;
// - the form is sent without a page reload, the server's page replacing the
//   form's region (errors stay next to their fields), once per click.
"use strict";

function applyScope(region) {
  const destination = region.querySelector("#destination");
  const condition = region.querySelector("#condition");
  if (!destination || !condition) {
    return;
  }
  const chosen = destination.selectedOptions[0];
  const offered = chosen && chosen.dataset.conditions ? new Set(chosen.dataset.conditions.split(" ")) : null;
  for (const option of condition.options) {
    const hide = offered !== null && option.value !== "" && !offered.has(option.value);
    option.hidden = hide;
    option.disabled = hide;
  }
  if (condition.selectedOptions[0] && condition.selectedOptions[0].disabled) {
    condition.value = "";
  }
  for (const block of region.querySelectorAll(".disclaimer")) {
    const scopeDestination = block.dataset.destination;
    const scopeCondition = block.dataset.condition;
    block.hidden =
      (scopeDestination !== "" && scopeDestination !== destination.value) ||
      (scopeCondition !== "" && scopeCondition !== condition.value);
  }
}

function focusFirstMessage(region) {
  const first = region.querySelector("#error-summary, #notice");
  if (first) {
    first.focus();
  }
}

async function send(event) {
  const form = event.target;
  event.preventDefault();
  if (form.dataset.sending === "true") {
    return; // a second click while the first is on its way
  }
  form.dataset.sending = "true";
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "text/html" },
      redirect: "follow",
    });
    if (response.redirected && response.ok) {
      window.location.assign(response.url); // the confirmation page
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const region = page.getElementById("form-region");
    if (!region) {
      form.submit(); // not our page: let the browser show it
      return;
    }
    document.title = page.title;
    document.getElementById("form-region").replaceWith(region);
    start(region);
    focusFirstMessage(region);
  } catch {
    form.submit(); // no network from script: the plain post still tries
  } finally {
    form.dataset.sending = "false";
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

function start(region) {
  const form = region.querySelector("#quote-form");
  if (!form) {
    return;
  }
  form.addEventListener("submit", send);
  for (const id of ["destination", "condition"]) {
    const control = region.querySelector(`#${id}`);
    control.addEventListener("change", () => applyScope(region));
  }
  applyScope(region);
  form.dataset.enhanced = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("form-region");
  if (region) {
    start(region);
    focusFirstMessage(region);
  }
});
