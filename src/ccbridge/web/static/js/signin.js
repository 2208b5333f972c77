// `/`: sign in with an API key, or have an admin key issue a person token (agent, supervisor).

import { ApiError, api, saveSession, session, tokenClaims } from "./api.js";
import { t } from "./i18n.js";
import { announce, announceError, startPage } from "./shell.js";

const form = document.getElementById("signin-form");
const asSelect = document.getElementById("as");

function syncFields() {
  const as = asSelect.value;
  document.getElementById("subject").closest(".field").hidden = as === "key";
  document.getElementById("agent_no").closest(".field").hidden = as !== "agent";
}

async function signIn(event) {
  event.preventDefault();
  const credential = form.credential.value.trim();
  const tenant = form.tenant.value.trim();
  const as = asSelect.value;
  if (!credential) {
    form.credential.setAttribute("aria-invalid", "true");
    form.credential.focus();
    announce(`${t("err.generic")}: ${t("signin.credential")}`, "error");
    return;
  }
  form.credential.removeAttribute("aria-invalid");
  try {
    const claims = tokenClaims(credential);
    if (claims) {
      // A person token pasted as it is: it names its own tenant, role and 工号.
      saveSession({
        credential,
        tenant: claims.tenant,
        role: claims.role,
        agentNo: claims.agent_no || null,
        subject: claims.sub,
      });
    } else if (as === "key") {
      await api("GET", `/api/v1/tenants/${encodeURIComponent(tenant)}`, { credential });
      saveSession({ credential, tenant, role: "key", agentNo: null, subject: "key" });
    } else {
      const subject = form.subject.value.trim() || form.agent_no.value.trim() || as;
      const body = { subject, role: as, tenant };
      if (as === "agent") body.agent_no = form.agent_no.value.trim();
      const issued = await api("POST", "/api/v1/auth/token", { body, credential });
      saveSession({
        credential: issued.access_token,
        tenant,
        role: as,
        agentNo: body.agent_no || null,
        subject,
      });
    }
  } catch (err) {
    if (err instanceof ApiError) announceError(err);
    else announce(`${t("err.generic")}: ${err.message}`, "error");
    return;
  }
  announce(t("signin.done"), "ok");
  const who = session();
  location.href = who.role === "agent" ? "/seat" : who.role === "supervisor" ? "/wallboard" : "/flows";
}

asSelect.addEventListener("change", syncFields);
form.addEventListener("submit", signIn);
startPage();
syncFields();
