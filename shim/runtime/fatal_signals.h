// Death by a signal whose action is the default one (SIGTERM from
// `systemctl stop` or `docker stop`, SIGINT from a terminal, SIGHUP, SIGPIPE
// ...). The kernel closes a killed process's sockets and still delivers what
// they hold; the stack ends with the process, so while the stack runs, such
// signals are caught (the program still sees SIG_DFL in every answer):
// the catching thread stops where it is, the progress thread finishes the
// connections as exit() does, then the default action is restored and the
// signal raised again, so that the process dies by it with the same status.
#pragma once

#include <signal.h>

#include <atomic>

namespace xdpload::shim {

// With the stack running: catch the listed signals whose action is SIG_DFL.
void catch_fatal_signals(int wake_fd);
// The signal that arrived (0: none). Any thread.
int fatal_signal_pending();
// The progress thread, once the connections are finished: the process dies
// by the pending signal.
[[noreturn]] void die_by_pending_signal();
// The calling thread is ending the process, the progress thread kept out,
// and dies by a pending signal itself once its end is done (exit()'s
// destructor and xdpload__exit check): from now on a caught signal on it
// is only noted. (false: it is not, after all.)
void this_thread_ends_the_process(bool on = true);
bool this_thread_ends_process();
// The calling thread keeps the progress thread out of the stack (an exec
// under way; an exit). A caught signal that stops it lets the progress
// thread in first, to finish the process: `hold` is Runtime's hold flag,
// stored 0 (free) from the handler.
void this_thread_holds_progress(bool on);
void watch_progress_hold(std::atomic<int>* hold);
// The end of exit(), the connections finished: a pending signal ends the
// process now; any later one acts as it would without the library (our
// catchers removed), on stdio's last flush as anywhere.
void stop_catching_at_exit();
// For shim/wait/signals.cc: does our catcher stand in for SIG_DFL on `sig`?
bool fatal_catcher_installed(int sig);
// The program set SIG_DFL (true) or anything else (false) on `sig`.
void fatal_action_changed(int sig, bool to_default);
// A forked child: a signal that reached the parent is not the child's.
void fatal_signals_after_fork();
// A forked child without the stack (nothing to finish, no progress thread
// to do it): the default actions again, where ours stood in for them.
void release_fatal_signals();

}  // namespace xdpload::shim
