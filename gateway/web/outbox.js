// My messages not yet acknowledged, by client_id: shown at once as
// "sending", sent (and sent again after a reconnection) by the socket, and
// gone once the server's copy arrives, which carries the same client_id.

export class Outbox extends Map {
  /** A new message of `sender` to send; shown until acknowledged. */
  add(conversationId, sender, content, type, attachments, replyTo = null) {
    const clientId = crypto.randomUUID();
    const pending = {
      id: null, client_id: clientId, conversation_id: conversationId, sender_id: sender, type,
      content, attachments, pending: true, failed: false, created_at: new Date().toISOString(), read_by: [],
      reactions: [], reply_to: replyTo, reply_count: 0,
    };
    this.set(clientId, pending);
    return pending;
  }

  /** Marks a message the server refused; returns it (undefined if unknown). */
  fail(clientId, error) {
    const pending = this.get(clientId);
    if (!pending) return undefined;
    pending.failed = true;
    pending.error = error;
    return pending;
  }

  /** Those of one conversation, in the order they were written. */
  of(conversationId) {
    return [...this.values()].filter((m) => m.conversation_id === conversationId);
  }
}
