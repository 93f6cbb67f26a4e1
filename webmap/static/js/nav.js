/* The top bar below 1280 px (phones, tablets): 菜单 opens every page link as a list (Escape or a tap elsewhere closes it).
 * Also marks the link of the current page and gives the page title its tooltip. */
(function () {
  "use strict";

  function setUp() {
    const bar = document.querySelector(".wg-topbar");
    const button = bar && bar.querySelector(".wg-menu-btn");
    const nav = bar && bar.querySelector(".wg-nav");
    if (!button || !nav) return;
    // The page title gives way to the links when the bar is short of room: keep all of it as a tooltip.
    const section = bar.querySelector(".wg-section");
    if (section && section.textContent.trim() && !section.title) section.title = section.textContent.trim();
    const here = window.location.pathname;
    for (const a of nav.querySelectorAll("a")) {
      if (a.pathname === here) a.setAttribute("aria-current", "page");
    }
    const open = (yes) => {
      bar.classList.toggle("wg-nav-open", yes);
      button.setAttribute("aria-expanded", String(yes));
    };
    button.addEventListener("click", (ev) => {
      ev.stopPropagation();
      open(!bar.classList.contains("wg-nav-open"));
    });
    document.addEventListener("click", (ev) => {
      if (!bar.contains(ev.target)) open(false);
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") open(false);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
}());
