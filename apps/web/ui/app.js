// A stand-in for the operator page (issue 11): it only proves that modules
// load from the build's base and import each other relatively.
import { whoami } from "./api.js";

whoami().then((who) => {
	const p = document.getElementById("status");
	if (p && who) p.textContent = "Signed in as " + who.user + " (" + who.method + ").";
});
