#include "shim/ext/lent_buffers.h"

extern "C" {
#include "lwip/pbuf.h"
}

namespace xdpload::shim {

uint64_t LentBuffers::lend(pbuf* p, Kind kind, uint16_t room, pid_t pid, uint32_t limit) {
  if (lent_ >= limit) return 0;
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = uint32_t(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.p = p;
  s.pid = pid;
  s.room = room;
  s.kind = kind;
  s.marked = false;
  ++lent_;
  return handle_of(index, s.generation);
}

int64_t LentBuffers::slot_of(uint64_t handle) const {
  const uint64_t low = handle & 0xffffffffu;
  if (low == 0 || low > slots_.size()) return -1;
  const Slot& s = slots_[low - 1];
  if (!s.p || s.generation != uint32_t(handle >> 32)) return -1;
  return int64_t(low - 1);
}

pbuf* LentBuffers::find(uint64_t handle, Kind kind, pid_t pid, uint16_t* room) const {
  int64_t i = slot_of(handle);
  if (i < 0) return nullptr;
  const Slot& s = slots_[size_t(i)];
  if (s.pid != pid || s.kind != kind) return nullptr;
  if (room) *room = s.room;
  return s.p;
}

pbuf* LentBuffers::take(uint64_t handle) {
  int64_t i = slot_of(handle);
  if (i < 0) return nullptr;
  Slot& s = slots_[size_t(i)];
  pbuf* p = s.p;
  s.p = nullptr;
  ++s.generation;  // the handle names nothing from now on
  free_.push_back(uint32_t(i));
  --lent_;
  return p;
}

bool LentBuffers::held(const uint64_t* handles, int n, pid_t pid, Kind kind, bool any_kind) const {
  int k = 0;
  for (; k < n; ++k) {
    int64_t i = slot_of(handles[k]);
    if (i < 0) break;
    const Slot& s = slots_[size_t(i)];
    if (s.pid != pid || s.marked || (!any_kind && s.kind != kind)) break;
    s.marked = true;
  }
  for (int j = 0; j < k; ++j) slots_[size_t(slot_of(handles[j]))].marked = false;
  return k == n;
}

bool LentBuffers::release(const uint64_t* handles, int n, pid_t pid) {
  // All or nothing: a bad handle (or one named twice) changes nothing.
  if (!held(handles, n, pid, Kind::Received, true)) return false;
  for (int j = 0; j < n; ++j) pbuf_free(take(handles[j]));
  return true;
}

void LentBuffers::release_all_of(pid_t pid) {
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].p && slots_[i].pid == pid) pbuf_free(take(handle_of(i, slots_[i].generation)));
}

}  // namespace xdpload::shim
