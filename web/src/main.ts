// Start-up: read GET /config, start Firebase Auth from it, then show the page the URL's hash
// names (#/call, #/settings, #/console, #/console/calls/<id>) once someone is signed in.

import { type AppConfig, api } from "./api";
import { type SignedIn, signOutUser, startAuth } from "./auth";
import { CallPage } from "./call";
import { ConsolePage } from "./console";
import { SettingsPage } from "./settings";
import { type Route, byTestId, errorMessage, parseRoute, say, show } from "./ui";

const PAGES = ["call", "settings", "console"] as const;
const TITLES: Record<(typeof PAGES)[number], string> = {
  call: "Call AI",
  settings: "Settings",
  console: "Operator console",
};

async function boot(): Promise<void> {
  const bootStatus = byTestId("boot-status");
  let config: AppConfig;
  try {
    config = await api.config();
  } catch (error) {
    say(bootStatus, `The app could not start: ${errorMessage(error)} Reload the page to try again.`);
    byTestId("boot-status").dataset.state = "error";
    return;
  }
  show(bootStatus, false);

  const call = new CallPage();
  const settings = new SettingsPage(config.voices ?? []);
  const operatorConsole = new ConsolePage();
  let session: SignedIn | null = null;

  const render = (): void => {
    const route: Route = parseRoute(location.hash);
    show(byTestId("signin"), !session);
    show(byTestId("app"), Boolean(session));
    show(byTestId("account"), Boolean(session));
    document.body.dataset.signedIn = String(Boolean(session));
    if (!session) {
      operatorConsole.leave();
      document.title = "Sign in · voicedesk";
      return;
    }
    byTestId("user-email").textContent = session.user.email ?? session.user.displayName ?? "signed in";
    show(byTestId("nav-console"), session.operator);
    for (const page of PAGES) {
      show(byTestId(`page-${page}`), route.page === page);
      const link = byTestId(`nav-${page}`);
      if (route.page === page) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${TITLES[route.page]} · voicedesk`;
    if (route.page === "settings") void settings.load();
    if (route.page === "console") operatorConsole.enter(session.operator, "callId" in route ? route.callId : null);
    else operatorConsole.leave();
  };

  window.addEventListener("hashchange", () => {
    render();
    // Tell keyboard and screen-reader users where they landed: focus the new page's heading.
    const route = parseRoute(location.hash);
    const heading = "callId" in route ? "#call-detail-title" : `#page-${route.page} h2`;
    if (session) document.querySelector<HTMLElement>(heading)?.focus({ preventScroll: true });
  });
  byTestId("signout").addEventListener("click", () => {
    void call.hangUp().then(signOutUser);
  });

  startAuth(config, (state) => {
    const wasSignedIn = session !== null;
    session = state;
    if (!state) {
      void call.hangUp();
      if (wasSignedIn) byTestId("signin-email").focus();
    }
    render();
  });
}

void boot();
