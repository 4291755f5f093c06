import { setMaxListeners } from 'node:events'

/**
 * An AbortController for a signal that many concurrent operations listen to (every copy,
 * request or batch under way adds an `abort` listener, and removes it when done), so
 * Node's "possible EventTarget memory leak" warning at 11 listeners does not apply.
 * @internal
 */
export function sharedAbortController(): AbortController {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal)
  return controller
}

/** A shared AbortController that has already fired with `message`: the state of a loop that is not running. */
export function abortedController(message: string): AbortController {
  const controller = sharedAbortController()
  controller.abort(new Error(message))
  return controller
}
