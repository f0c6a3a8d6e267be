// data-streams API docs: Swagger UI, served by data-streams itself, on /openapi.json.
// validatorUrl null: by default Swagger UI asks validator.swagger.io to check the document.
window.addEventListener("load", function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null
  });
});
