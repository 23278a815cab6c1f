#include "common/error_code.h"

namespace pgbaton {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kUsage:
      return "usage";
    case ErrorCode::kPreflightFailed:
      return "preflight_failed";
    case ErrorCode::kInterrupted:
      return "interrupted";
    case ErrorCode::kConnection:
      return "connection";
    case ErrorCode::kAuthentication:
      return "authentication";
    case ErrorCode::kPermission:
      return "permission";
    case ErrorCode::kServerConfig:
      return "server_config";
    case ErrorCode::kVersion:
      return "version";
    case ErrorCode::kSlotMissing:
      return "slot_missing";
    case ErrorCode::kPublicationMissing:
      return "publication_missing";
    case ErrorCode::kSlotInUse:
      return "slot_in_use";
    case ErrorCode::kIdentityMismatch:
      return "identity_mismatch";
    case ErrorCode::kSourceIsTarget:
      return "source_is_target";
    case ErrorCode::kQueueMissing:
      return "queue_missing";
    case ErrorCode::kNoReplicaIdentity:
      return "no_replica_identity";
    case ErrorCode::kUnsupportedType:
      return "unsupported_type";
    case ErrorCode::kSchemaChanged:
      return "schema_changed";
    case ErrorCode::kApplyConflict:
      return "apply_conflict";
    case ErrorCode::kServerError:
      return "server_error";
    case ErrorCode::kQueueCorrupt:
      return "queue_corrupt";
    case ErrorCode::kQueueFormat:
      return "queue_format";
    case ErrorCode::kQueueLocked:
      return "queue_locked";
    case ErrorCode::kDiskFull:
      return "disk_full";
    case ErrorCode::kQueueMismatch:
      return "queue_mismatch";
    case ErrorCode::kKafka:
      return "kafka";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kProtocol:
      return "protocol";
    case ErrorCode::kTargetNotEmpty:
      return "target_not_empty";
    case ErrorCode::kSnapshotLost:
      return "snapshot_lost";
    case ErrorCode::kLagTooHigh:
      return "lag_too_high";
    case ErrorCode::kApplierNotRunning:
      return "applier_not_running";
    case ErrorCode::kFenceFailed:
      return "fence_failed";
    case ErrorCode::kFlipFailed:
      return "flip_failed";
    case ErrorCode::kFenceBypassed:
      return "fence_bypassed";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kVerifyMismatch:
      return "verify_mismatch";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kGlobalsDrift:
      return "globals_drift";
    case ErrorCode::kGlobalsUnsupported:
      return "globals_unsupported";
  }
  return "unknown";
}

const std::vector<ErrorCode>& AllErrorCodes() {
  static const std::vector<ErrorCode> kAll = {
      ErrorCode::kOk,
      ErrorCode::kInternal,
      ErrorCode::kUsage,
      ErrorCode::kPreflightFailed,
      ErrorCode::kInterrupted,
      ErrorCode::kConnection,
      ErrorCode::kAuthentication,
      ErrorCode::kPermission,
      ErrorCode::kServerConfig,
      ErrorCode::kVersion,
      ErrorCode::kSlotMissing,
      ErrorCode::kPublicationMissing,
      ErrorCode::kSlotInUse,
      ErrorCode::kIdentityMismatch,
      ErrorCode::kSourceIsTarget,
      ErrorCode::kQueueMissing,
      ErrorCode::kNoReplicaIdentity,
      ErrorCode::kUnsupportedType,
      ErrorCode::kSchemaChanged,
      ErrorCode::kApplyConflict,
      ErrorCode::kServerError,
      ErrorCode::kQueueCorrupt,
      ErrorCode::kQueueFormat,
      ErrorCode::kQueueLocked,
      ErrorCode::kDiskFull,
      ErrorCode::kQueueMismatch,
      ErrorCode::kKafka,
      ErrorCode::kIo,
      ErrorCode::kProtocol,
      ErrorCode::kTargetNotEmpty,
      ErrorCode::kSnapshotLost,
      ErrorCode::kLagTooHigh,
      ErrorCode::kApplierNotRunning,
      ErrorCode::kFenceFailed,
      ErrorCode::kFlipFailed,
      ErrorCode::kFenceBypassed,
      ErrorCode::kNotFound,
      ErrorCode::kVerifyMismatch,
      ErrorCode::kTimeout,
      ErrorCode::kGlobalsDrift,
      ErrorCode::kGlobalsUnsupported,
  };
  return kAll;
}

}  // namespace pgbaton
