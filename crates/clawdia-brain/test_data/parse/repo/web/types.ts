// Types shared by the web client.

export interface Message {
  subject: string;
  read: boolean;
}

export type Inbox = Message[];

/** Counts unread messages. */
export function countUnread(inbox: Inbox): number {
  return inbox.filter((message) => !message.read).length;
}

export class InboxStore {
  private items: Inbox = [];

  add(message: Message): void {
    this.items.push(message);
  }
}
