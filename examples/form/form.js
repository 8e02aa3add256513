// The free-quote form: renders the public catalog, posts the request as JSON and
// shows the answer. Plain modern JavaScript, no build step. Every text that comes
// from the API is inserted as text (textContent, new Option), never as HTML.
// The page's own texts are in i18n/<lang>.json, one file per language.

const DEFAULT_API = "http://127.0.0.1:5000";
// `?api=` is a convenience for trying the form locally. On a public page it would
// let a crafted link send patients' data to any server, so there only
// window.QUOTE_API (set by whoever deploys the page) counts.
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

// What the API accepts; anything else in the body would be refused as unknown.
const TEXT_FIELDS = [
  "full_name",
  "email",
  "phone",
  "country_of_residence",
  "preferred_language",
  "condition",
  "destination",
  "treatment",
  "patient_age",
  "travel_from",
  "travel_to",
  "budget_eur",
  "message",
  "website",
];
const CHECKBOX_FIELDS = ["consent_privacy", "consent_marketing"];

const PAGE_LANGUAGES = ["en", "fr", "nl", "de"];
// The page's texts (i18n/<lang>.json); English until they are loaded.
let texts = {};

const form = document.getElementById("quote-form");
const status = document.getElementById("form-status");
const submitButton = document.getElementById("submit");
const destinationSelect = document.getElementById("destination");
const conditionSelect = document.getElementById("condition");

let api = null;
const pageLanguage = choosePageLanguage();
let catalog = null;
let sending = false;
// One key per page load, so a double click or a retried network request is
// answered once. The service refuses a key reused with another body, so a
// corrected resubmission (after field errors) gets a fresh key.
let idempotencyKey = newIdempotencyKey();
let keyBody = null;

// <html lang>, or `?lang=` to try another language.
function choosePageLanguage() {
  const asked = new URLSearchParams(window.location.search).get("lang") || "";
  const declared = (asked || document.documentElement.lang || "en").split("-")[0].toLowerCase();
  return PAGE_LANGUAGES.includes(declared) ? declared : "en";
}

// A text of the page's language, with {name} placeholders filled in.
function t(key, values = {}) {
  const text = texts[key] || key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

async function loadTexts() {
  const response = await fetch(new URL(`i18n/${pageLanguage}.json`, import.meta.url));
  if (!response.ok) {
    throw new Error(`i18n/${pageLanguage}.json answered ${response.status}`);
  }
  texts = await response.json();
  document.documentElement.lang = pageLanguage;
  document.title = t("title");
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
}

function apiBase() {
  const configured = typeof window.QUOTE_API === "string" ? window.QUOTE_API : "";
  const fromQuery = new URLSearchParams(window.location.search).get("api") || "";
  let base = configured || DEFAULT_API;
  if (!configured && fromQuery && LOOPBACK_HOSTS.has(window.location.hostname)) {
    base = fromQuery;
  }
  const url = new URL(base, window.location.href);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`The API address must be http or https, not ${url.protocol}`);
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  // randomUUID exists only in secure contexts (https, localhost); this is the same v4 UUID.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------- the catalog

async function loadCatalog() {
  let response = await fetchCatalog(pageLanguage);
  if (response.status === 422 && pageLanguage !== "en") {
    response = await fetchCatalog("en"); // the catalog has no texts in the page's language
  }
  if (!response.ok) {
    throw new Error(`GET /catalog answered ${response.status}`);
  }
  return response.json();
}

function fetchCatalog(language) {
  const url = `${api}/api/v1/catalog?lang=${encodeURIComponent(language)}`;
  return fetch(url, { headers: { Accept: "application/json" } });
}

function fillSelect(select, options, selected) {
  const placeholder = select.querySelector('option[value=""]');
  select.replaceChildren(...(placeholder ? [placeholder] : []));
  for (const { value, label } of options) {
    select.append(new Option(label, value, false, value === selected));
  }
}

function languageName(code) {
  try {
    const names = new Intl.DisplayNames([pageLanguage], { type: "language" });
    const name = names.of(code);
    return name ? name.charAt(0).toLocaleUpperCase(pageLanguage) + name.slice(1) : code;
  } catch {
    return code;
  }
}

function renderCatalog() {
  fillSelect(
    destinationSelect,
    catalog.destinations.map((d) => ({ value: d.code, label: d.name })),
    destinationSelect.value,
  );
  renderConditions();
  const treatments = catalog.treatments.map((t) => ({ value: t.slug, label: t.name }));
  const defaultTreatment = treatments.some((t) => t.value === "unsure") ? "unsure" : "";
  fillSelect(document.getElementById("treatment"), treatments, defaultTreatment);
  fillSelect(
    document.getElementById("preferred_language"),
    catalog.languages.map((code) => ({ value: code, label: languageName(code) })),
    catalog.languages.includes(pageLanguage) ? pageLanguage : catalog.languages[0],
  );
  // Country names in the page's language, from the catalog (the ISO code is sent).
  fillSelect(
    document.getElementById("country_of_residence"),
    (catalog.countries || []).map((c) => ({ value: c.code, label: c.name })),
    document.getElementById("country_of_residence").value,
  );
  document.getElementById("consent-text").textContent = catalog.consent
    ? catalog.consent.text
    : t("consentFallback");
  renderDisclaimers();
  renderOrganisation();
}

// Who the patient deals with, as the service's settings say (ORGANISATION_NAME...).
function renderOrganisation() {
  const organisation = catalog.organisation;
  if (!organisation) {
    return;
  }
  document.getElementById("organisation-name").textContent = organisation.name;
  document.getElementById("organisation-address").textContent = organisation.address;
  const contact = document.getElementById("organisation-contact");
  contact.textContent = organisation.contact_email;
  contact.href = `mailto:${organisation.contact_email}`;
  const privacy = document.getElementById("organisation-privacy");
  // Only a web address becomes a link: never a javascript: or data: URL.
  if (/^https?:\/\//i.test(organisation.privacy_policy_url)) {
    privacy.href = organisation.privacy_policy_url;
  } else {
    privacy.removeAttribute("href");
  }
  document.getElementById("organisation").hidden = false;
}

// Only the conditions treated at the chosen destination; all of them before a choice.
function renderConditions() {
  const destination = catalog.destinations.find((d) => d.code === destinationSelect.value);
  const offered = destination ? new Set(destination.conditions) : null;
  const conditions = catalog.conditions
    .filter((c) => offered === null || offered.has(c.slug))
    .map((c) => ({ value: c.slug, label: c.name }));
  const kept = conditions.some((c) => c.value === conditionSelect.value)
    ? conditionSelect.value
    : "";
  fillSelect(conditionSelect, conditions, kept);
}

// Disclaimers for everyone, plus those scoped to the chosen destination and condition.
function renderDisclaimers() {
  const destination = destinationSelect.value;
  const condition = conditionSelect.value;
  const container = document.getElementById("disclaimers");
  const paragraphs = catalog.disclaimers
    .filter(
      (d) =>
        (d.scope.destination === null || d.scope.destination === destination) &&
        (d.scope.condition === null || d.scope.condition === condition),
    )
    .map((d) => {
      const paragraph = document.createElement("p");
      paragraph.className = "disclaimer";
      paragraph.dataset.key = d.key;
      paragraph.textContent = d.text;
      return paragraph;
    });
  container.replaceChildren(...paragraphs);
}

// ---------------------------------------------------------------- messages

function showStatus(text) {
  status.textContent = text;
  status.hidden = false;
}

function clearStatus() {
  status.textContent = "";
  status.hidden = true;
}

function errorElement(name) {
  return document.getElementById(`error-${name}`);
}

function describedBy(control) {
  return (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
}

function showFieldError(name, messages) {
  const control = form.elements.namedItem(name);
  const message = errorElement(name);
  if (!control || !message || control.type === "hidden" || name === "website") {
    return false;
  }
  message.textContent = messages.join(" ");
  message.hidden = false;
  control.setAttribute("aria-invalid", "true");
  const ids = describedBy(control);
  if (!ids.includes(message.id)) {
    control.setAttribute("aria-describedby", [...ids, message.id].join(" "));
  }
  return true;
}

function clearFieldErrors() {
  for (const message of form.querySelectorAll(".field-error")) {
    const name = message.id.slice("error-".length);
    const control = form.elements.namedItem(name);
    message.textContent = "";
    message.hidden = true;
    if (control) {
      control.removeAttribute("aria-invalid");
      const ids = describedBy(control).filter((id) => id !== message.id);
      if (ids.length) {
        control.setAttribute("aria-describedby", ids.join(" "));
      } else {
        control.removeAttribute("aria-describedby");
      }
    }
  }
}

function showFieldErrors(fields) {
  const general = [];
  let first = null;
  for (const [name, messages] of Object.entries(fields)) {
    const list = Array.isArray(messages) ? messages.map(String) : [String(messages)];
    if (showFieldError(name, list)) {
      first = first || form.elements.namedItem(name);
    } else {
      general.push(...list);
    }
  }
  showStatus([t("fieldErrors"), ...general].join(" "));
  if (first) {
    first.focus();
  }
}

function retryAfterText(response) {
  const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    return "";
  }
  const minutes = Math.ceil(seconds / 60);
  return minutes <= 1 ? t("retryMinute") : t("retryMinutes", { minutes });
}

// ---------------------------------------------------------------- sending

function collect() {
  const body = {};
  for (const name of TEXT_FIELDS) {
    body[name] = form.elements.namedItem(name).value.trim();
  }
  for (const name of CHECKBOX_FIELDS) {
    body[name] = form.elements.namedItem(name).checked;
  }
  return body;
}

async function send(event) {
  event.preventDefault();
  if (sending || catalog === null) {
    return; // a second click while the first is on its way
  }
  const body = JSON.stringify(collect());
  if (keyBody !== null && keyBody !== body) {
    idempotencyKey = newIdempotencyKey();
  }
  keyBody = body;

  sending = true;
  submitButton.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    await post(body);
  } finally {
    sending = false;
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

async function post(body) {
  let response;
  try {
    response = await fetch(`${api}/api/v1/quote-requests`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        // The budget and dates are sent as typed; the service reads them in this language.
        "Content-Language": pageLanguage,
        Accept: "application/json",
        "Idempotency-Key": idempotencyKey,
      },
      body,
    });
  } catch {
    showStatus(t("unreachable"));
    return;
  }
  const payload = await response.json().catch(() => null);
  const error = payload && payload.error && typeof payload.error === "object" ? payload.error : null;

  if (response.status === 201 && payload && payload.reference) {
    succeed(payload, JSON.parse(body).email);
    return;
  }
  clearFieldErrors();
  if (error && error.code === "idempotency_key_reused") {
    // Should not happen (a changed body gets a new key), but never leave the form stuck.
    idempotencyKey = newIdempotencyKey();
    keyBody = null;
  }
  if (response.status === 422 && error && error.fields && Object.keys(error.fields).length) {
    showFieldErrors(error.fields);
  } else if (response.status === 429) {
    const retry = retryAfterText(response);
    showStatus(retry ? t("tooMany").replace(/\.$/, ` (${retry}).`) : t("tooMany"));
  } else if (response.status === 409) {
    showStatus(t("inFlight"));
  } else if (response.status >= 500) {
    showStatus(t("serverError"));
  } else {
    showStatus((error && error.message) || t("unexpected"));
  }
}

// The reference, where the email went and when to expect an answer; when the
// request reads as an emergency, the advice to call for help comes first.
function succeed(answer, email) {
  clearStatus();
  form.hidden = true;
  document.getElementById("reference").textContent = answer.reference;
  document.getElementById("sent-to").textContent = t("sentTo", { email });
  const hours = catalog.first_response_hours || 24;
  document.getElementById("usual-time").textContent = t("usualTime", { hours });
  const success = document.getElementById("success");
  success.hidden = false;
  if (answer.urgent === true) {
    const urgent = document.getElementById("urgent");
    document.getElementById("urgent-call").textContent = t("urgentCall", {
      number: answer.emergency_number || "112",
    });
    document.getElementById("urgent-advice").textContent = answer.advice || "";
    urgent.hidden = false;
    urgent.tabIndex = -1;
    urgent.focus();
    return;
  }
  success.focus();
}

// Why the catalog could not be read: the service is down, or it answered and the
// browser kept the answer from this page (CORS). A no-cors request tells them apart.
async function loadFailure() {
  const origin = window.location.origin;
  try {
    await fetch(`${api}/healthz`, { mode: "no-cors", cache: "no-store" });
  } catch {
    return t("loadFailed", { api });
  }
  return t("corsBlocked", { api, origin });
}

// ---------------------------------------------------------------- start

function setDateBounds() {
  const today = new Date();
  const local = new Date(today.getTime() - today.getTimezoneOffset() * 60000);
  const iso = local.toISOString().slice(0, 10);
  for (const name of ["travel_from", "travel_to"]) {
    form.elements.namedItem(name).min = iso;
  }
}

async function start() {
  try {
    await loadTexts();
  } catch {
    // The English texts of the page stay; the form still works.
  }
  setDateBounds();
  form.addEventListener("submit", send);
  destinationSelect.addEventListener("change", () => {
    renderConditions();
    renderDisclaimers();
  });
  conditionSelect.addEventListener("change", renderDisclaimers);
  try {
    api = apiBase();
  } catch (error) {
    showStatus(String(error.message));
    return;
  }
  try {
    catalog = await loadCatalog();
  } catch {
    showStatus(await loadFailure());
    return;
  }
  renderCatalog();
  clearStatus();
  submitButton.disabled = false;
  form.dataset.ready = "true";
}

start();
