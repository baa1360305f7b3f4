// Firebase sign-in: initialised from GET /config (the Auth emulator in development), the
// sign-in form, and ID tokens for the API.

import { FirebaseError, initializeApp } from "firebase/app";
import {
  type Auth,
  type User,
  GoogleAuthProvider,
  connectAuthEmulator,
  createUserWithEmailAndPassword,
  getAuth,
  getIdToken,
  getIdTokenResult,
  onAuthStateChanged,
  signInWithEmailAndPassword,
  signInWithPopup,
  signOut,
} from "firebase/auth";
import { type AppConfig, useTokens } from "./api";
import { byTestId, say, show } from "./ui";

export interface SignedIn {
  user: User;
  operator: boolean;
}

let auth: Auth | null = null;
/** Set while the person signs out on purpose; any other sign-out is the session ending. */
let signingOut = false;
const EXPIRED = "Your sign-in has expired. Please sign in again.";

const MESSAGES: Record<string, string> = {
  "auth/invalid-credential": "That email and password do not match an account.",
  "auth/wrong-password": "That email and password do not match an account.",
  "auth/user-not-found": "That email and password do not match an account.",
  "auth/invalid-email": "Enter a valid email address.",
  "auth/missing-password": "Enter your password.",
  "auth/weak-password": "Choose a password of at least 6 characters.",
  "auth/email-already-in-use": "An account with this email already exists: sign in instead.",
  "auth/user-disabled": "This account has been disabled.",
  "auth/too-many-requests": "Too many attempts. Wait a moment and try again.",
  "auth/network-request-failed": "Cannot reach the sign-in service. Check your connection.",
  "auth/popup-closed-by-user": "The Google sign-in window was closed before signing in.",
  "auth/popup-blocked": "The browser blocked the Google sign-in window. Allow pop-ups and try again.",
  "auth/user-token-expired": EXPIRED,
};

export function authErrorMessage(error: unknown): string {
  if (error instanceof FirebaseError) return MESSAGES[error.code] ?? `Sign-in failed (${error.code}).`;
  return "Sign-in failed. Try again.";
}

/** Start Firebase Auth and report every change of signed-in user (null: signed out). */
export function startAuth(config: AppConfig, onChange: (state: SignedIn | null) => void): void {
  const app = initializeApp(config.firebase);
  auth = getAuth(app);
  if (config.authEmulatorUrl) connectAuthEmulator(auth, config.authEmulatorUrl, { disableWarnings: true });

  useTokens(async (refresh) => {
    const user = auth?.currentUser;
    if (!user) throw new Error("signed out");
    return getIdToken(user, refresh);
  });

  setUpForm(config.googleSignIn);

  let current: User | null = null;
  onAuthStateChanged(auth, async (user) => {
    if (!user) {
      // Firebase signs the user out itself when their session cannot be renewed (account
      // disabled or deleted, password changed elsewhere): say so rather than just vanish.
      const notice = byTestId("signin-notice");
      if (current && !signingOut && notice.hidden) say(notice, EXPIRED);
      current = null;
      signingOut = false;
      onChange(null);
      return;
    }
    current = user;
    try {
      // A fresh token, so a newly granted operator claim shows without signing out.
      const result = await getIdTokenResult(user, true);
      onChange({ user, operator: result.claims.operator === true });
    } catch (error) {
      await expire(authErrorMessage(error));
    }
  });
}

/** Sign out and ask the person to sign in again, saying why. */
export async function expire(message = EXPIRED): Promise<void> {
  say(byTestId("signin-notice"), message);
  if (auth) await signOut(auth);
}

export async function signOutUser(): Promise<void> {
  say(byTestId("signin-notice"), null);
  if (!auth?.currentUser) return;
  signingOut = true;
  await signOut(auth);
}

function setUpForm(googleSignIn: boolean): void {
  const form = byTestId<HTMLFormElement>("signin-form");
  const email = byTestId<HTMLInputElement>("signin-email");
  const password = byTestId<HTMLInputElement>("signin-password");
  const error = byTestId("signin-error");
  const google = byTestId<HTMLButtonElement>("signin-google");
  const create = byTestId<HTMLButtonElement>("signin-create");
  const buttons = [byTestId<HTMLButtonElement>("signin-submit"), create, google];

  const run = async (action: () => Promise<unknown>): Promise<void> => {
    if (!auth) return;
    say(error, null);
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action();
      say(byTestId("signin-notice"), null);
      // Clear the password; a reset (not value = "") also forgets that the field was touched,
      // so it is not shown as invalid when the form appears again after signing out.
      const address = email.value;
      form.reset();
      email.value = address;
    } catch (e) {
      say(error, authErrorMessage(e));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(() => signInWithEmailAndPassword(auth as Auth, email.value.trim(), password.value));
  });
  create.addEventListener("click", () => {
    if (!form.reportValidity()) return;
    void run(() => createUserWithEmailAndPassword(auth as Auth, email.value.trim(), password.value));
  });
  show(google, googleSignIn);
  google.addEventListener("click", () => {
    void run(() => signInWithPopup(auth as Auth, new GoogleAuthProvider()));
  });
}
