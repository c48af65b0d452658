import { fetchJson } from "./http.js";

/**
 * Loads the current user's inbox.
 */
export async function loadInbox(userId) {
  return fetchJson(`/api/users/${userId}/inbox`);
}

class InboxView {
  constructor(root) {
    this.root = root;
  }

  render(messages) {
    this.root.textContent = messages.map((m) => m.subject).join("\n");
  }
}

const unreadCount = (messages) => messages.filter((m) => !m.read).length;
