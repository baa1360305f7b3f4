// The Settings page: the agent's voice, greeting and language, and the phone PIN, through
// GET/PUT /me/settings. The PIN is write-only: blank keeps it, "Remove PIN" sends null.

import { ApiError, type SettingsUpdate, type UserSettings, type Voice, api } from "./api";
import { expire } from "./auth";
import { byTestId, el, errorMessage, say } from "./ui";

const FIELDS = ["voice_id", "greeting", "language", "phone_pin"] as const;

export class SettingsPage {
  private readonly form = byTestId<HTMLFormElement>("settings-form");
  private readonly fields = byTestId<HTMLFieldSetElement>("settings-fields");
  private readonly voice = byTestId<HTMLSelectElement>("settings-voice");
  private readonly greeting = byTestId<HTMLTextAreaElement>("settings-greeting");
  private readonly language = byTestId<HTMLInputElement>("settings-language");
  private readonly pin = byTestId<HTMLInputElement>("settings-pin");
  private readonly pinStatus = byTestId("settings-pin-status");
  private readonly removePin = byTestId<HTMLButtonElement>("settings-remove-pin");
  private readonly status = byTestId("settings-status");
  private readonly error = byTestId("settings-error");
  private readonly fieldErrors: Record<(typeof FIELDS)[number], HTMLElement> = {
    voice_id: byTestId("settings-voice-error"),
    greeting: byTestId("settings-greeting-error"),
    language: byTestId("settings-language-error"),
    phone_pin: byTestId("settings-pin-error"),
  };

  private readonly inputs: Record<(typeof FIELDS)[number], HTMLElement> = {
    voice_id: this.voice,
    greeting: this.greeting,
    language: this.language,
    phone_pin: this.pin,
  };

  constructor(private readonly voices: Voice[]) {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit(this.changes());
    });
    this.removePin.addEventListener("click", () => void this.submit({ phone_pin: null }, "Phone PIN removed."));
  }

  /** Load the signed-in user's settings into the form. */
  async load(): Promise<void> {
    this.busy(true);
    this.clearMessages();
    this.status.textContent = "Loading your settings…";
    try {
      this.fill(await api.settings());
      this.status.textContent = "";
      this.busy(false);
    } catch (error) {
      // The form stays disabled: saving blanks over settings we could not read would lose them.
      await this.failed(error);
    }
  }

  private changes(): SettingsUpdate {
    const update: SettingsUpdate = {
      voice_id: this.voice.value || null,
      greeting: this.greeting.value.trim() || null,
      language: this.language.value.trim(),
    };
    if (this.pin.value) update.phone_pin = this.pin.value;
    return update;
  }

  private async submit(update: SettingsUpdate, done = "Settings saved."): Promise<void> {
    if (!this.form.reportValidity()) return;
    this.busy(true);
    this.clearMessages();
    this.status.textContent = "Saving…";
    try {
      this.fill(await api.saveSettings(update));
      this.status.textContent = done;
    } catch (error) {
      await this.failed(error);
    } finally {
      this.busy(false);
    }
  }

  private fill(settings: UserSettings): void {
    const options = [el("option", { value: "", text: "Default voice" })];
    for (const voice of this.voices) options.push(el("option", { value: voice.id, text: voice.name }));
    if (settings.voice_id && !this.voices.some((v) => v.id === settings.voice_id)) {
      options.push(el("option", { value: settings.voice_id, text: `Other voice (${settings.voice_id})` }));
    }
    this.voice.replaceChildren(...options);
    this.voice.value = settings.voice_id ?? "";
    this.greeting.value = settings.greeting ?? "";
    this.language.value = settings.language;
    this.pin.value = "";
    this.pinStatus.dataset.pinSet = String(settings.phone_pin_set);
    this.pinStatus.textContent = settings.phone_pin_set
      ? "A phone PIN is set. Leave the field blank to keep it, or type a new one."
      : "No phone PIN is set.";
    this.removePin.hidden = !settings.phone_pin_set;
  }

  private async failed(error: unknown): Promise<void> {
    this.status.textContent = "";
    if (error instanceof ApiError && error.kind === "session-expired") {
      await expire(error.message);
      return;
    }
    let shown = false;
    if (error instanceof ApiError) {
      for (const field of FIELDS) {
        const message = error.fields[field];
        if (message) {
          say(this.fieldErrors[field], message);
          this.inputs[field].setAttribute("aria-invalid", "true");
          shown = true;
        }
      }
    }
    say(this.error, shown ? "Some settings were not saved: see the messages by the fields." : errorMessage(error));
  }

  private clearMessages(): void {
    say(this.error, null);
    for (const field of FIELDS) {
      say(this.fieldErrors[field], null);
      this.inputs[field].removeAttribute("aria-invalid");
    }
  }

  private busy(on: boolean): void {
    this.fields.disabled = on;
    this.form.setAttribute("aria-busy", String(on));
  }
}
