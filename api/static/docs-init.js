// Starts Swagger UI (api/templates/docs.html) on this server's OpenAPI document. A file rather than
// an inline script: the page's Content-Security-Policy allows scripts from this server only.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    tryItOutEnabled: true,
    // Nothing leaves this server: no badge from the public validator service.
    validatorUrl: null,
  });
});
