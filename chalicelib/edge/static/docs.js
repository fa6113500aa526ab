// Starts Swagger UI on /docs. The document's server is this deployment (its origin and any API Gateway stage in the
// path), so "Try it out" sends requests to the same API; the validator badge, which calls out, is off.
"use strict";

window.addEventListener("DOMContentLoaded", async () => {
  const base = window.location.pathname.replace(/\/docs\/?$/, "");
  const response = await fetch(base + "/openapi.json", { headers: { Accept: "application/json" } });
  const spec = await response.json();
  spec.servers = [{ url: window.location.origin + base, description: "this deployment" }];
  window.ui = SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
