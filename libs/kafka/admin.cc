#include "libs/kafka/admin.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {
namespace {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};

struct AclBindingDeleter {
  void operator()(rd_kafka_AclBinding_t* b) const { rd_kafka_AclBinding_destroy(b); }
};

using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

absl::StatusOr<Handle> NewAdminHandle(const std::string& bootstrap_servers,
                                      const Properties& extra) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Properties props = WithClientConfig(extra);
  props["bootstrap.servers"] = bootstrap_servers;
  props["client.id"] = "schakel-admin";
  for (const auto& [key, value] : props) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat("kafka admin property ", key, ": ", error));
    }
  }
  // rd_kafka_new takes ownership of conf on success only.
  Handle rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("kafka admin: ", error));
  }
  return rk;
}

}  // namespace

absl::Status CreateAcls(const std::string& bootstrap_servers, const std::vector<AclBinding>& acls,
                        std::chrono::milliseconds timeout) {
  if (acls.empty()) return absl::OkStatus();
  absl::StatusOr<Handle> rk = NewAdminHandle(bootstrap_servers, {});
  if (!rk.ok()) return rk.status();
  char error[512];
  std::vector<std::unique_ptr<rd_kafka_AclBinding_t, AclBindingDeleter>> owned;
  std::vector<rd_kafka_AclBinding_t*> bindings;
  for (const AclBinding& acl : acls) {
    rd_kafka_ResourceType_t type = RD_KAFKA_RESOURCE_UNKNOWN;
    if (acl.resource == "topic") type = RD_KAFKA_RESOURCE_TOPIC;
    if (acl.resource == "group") type = RD_KAFKA_RESOURCE_GROUP;
    rd_kafka_AclOperation_t operation = RD_KAFKA_ACL_OPERATION_UNKNOWN;
    if (acl.operation == "Read") operation = RD_KAFKA_ACL_OPERATION_READ;
    if (acl.operation == "Write") operation = RD_KAFKA_ACL_OPERATION_WRITE;
    if (acl.operation == "Describe") operation = RD_KAFKA_ACL_OPERATION_DESCRIBE;
    if (acl.operation == "Create") operation = RD_KAFKA_ACL_OPERATION_CREATE;
    if (type == RD_KAFKA_RESOURCE_UNKNOWN || operation == RD_KAFKA_ACL_OPERATION_UNKNOWN) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka acl: ", acl.operation, " on ", acl.resource, " is not supported"));
    }
    rd_kafka_AclBinding_t* binding = rd_kafka_AclBinding_new(
        type, acl.name.c_str(),
        acl.prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        acl.principal.c_str(), "*", operation, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, error,
        sizeof error);
    if (binding == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("kafka acl for ", acl.principal, ": ", error));
    }
    owned.emplace_back(binding);
    bindings.push_back(binding);
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATEACLS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()), error,
                                            sizeof error);
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk->get()));
  rd_kafka_CreateAcls(rk->get(), bindings.data(), bindings.size(), options.get(), queue.get());
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
  if (!event) return absl::UnavailableError("kafka admin: no answer from the broker in time");
  if (const rd_kafka_resp_err_t err = rd_kafka_event_error(event.get());
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const std::string message =
        absl::StrCat("kafka admin: create acls: ", rd_kafka_event_error_string(event.get()));
    if (err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
      return absl::PermissionDeniedError(message);
    }
    return absl::UnavailableError(message);
  }
  std::size_t count = 0;
  const rd_kafka_acl_result_t** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_error_t* err = rd_kafka_acl_result_error(results[i]);
    if (err == nullptr || rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const std::string message =
        absl::StrCat("kafka admin: acl ", i < acls.size() ? acls[i].principal : "", " ",
                     i < acls.size() ? acls[i].name : "", ": ", rd_kafka_error_string(err));
    if (rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
      return absl::PermissionDeniedError(message);
    }
    return absl::InternalError(message);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListTopics(const std::string& bootstrap_servers,
                                                    const std::string& prefix,
                                                    std::chrono::milliseconds timeout,
                                                    const Properties& extra) {
  absl::StatusOr<Handle> rk = NewAdminHandle(bootstrap_servers, extra);
  if (!rk.ok()) return rk.status();
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk->get(), /*all_topics=*/1, nullptr, &metadata,
                                                    static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka admin: list topics: ", rd_kafka_err2str(err)));
  }
  std::vector<std::string> names;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const std::string name = metadata->topics[i].topic;
    if (name.rfind(prefix, 0) == 0 && metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      names.push_back(name);
    }
  }
  rd_kafka_metadata_destroy(metadata);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status EnsureTopics(const std::string& bootstrap_servers,
                          const std::vector<TopicSpec>& topics, std::chrono::milliseconds timeout,
                          const Properties& extra) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Properties props = WithClientConfig(extra);
  props["bootstrap.servers"] = bootstrap_servers;
  props["client.id"] = "schakel-admin";
  for (const auto& [key, value] : props) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat("kafka admin property ", key, ": ", error));
    }
  }
  // rd_kafka_new takes ownership of conf on success only.
  std::unique_ptr<rd_kafka_t, HandleDeleter> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("kafka admin: ", error));
  }

  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const TopicSpec& spec : topics) {
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                                                   spec.replication_factor, error, sizeof error);
    if (t == nullptr) {
      rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
      return absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, ": ", error));
    }
    new_topics.push_back(t);
    for (const auto& [key, value] : spec.config) {
      if (rd_kafka_NewTopic_set_config(t, key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
        return absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, ": config ", key));
      }
    }
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()), error,
                                            sizeof error);
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_CreateTopics(rk.get(), new_topics.data(), new_topics.size(), options.get(), queue.get());
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());

  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
  if (!event) return absl::UnavailableError("kafka admin: no answer from the broker in time");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka admin: create topics: ", rd_kafka_event_error_string(event.get())));
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    const char* name = rd_kafka_topic_result_name(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::info("kafka: created topic {}", name);
    } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      return absl::InternalError(absl::StrCat("kafka admin: topic ", name, ": ",
                                              message ? message : rd_kafka_err2str(err)));
    }
  }
  return absl::OkStatus();
}

}  // namespace schakel::kafka
