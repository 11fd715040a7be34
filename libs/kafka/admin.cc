#include "libs/kafka/admin.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
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
using Binding = std::unique_ptr<rd_kafka_AclBinding_t, AclBindingDeleter>;

rd_kafka_ResourceType_t ResourceType(const std::string& resource) {
  if (resource == "topic") return RD_KAFKA_RESOURCE_TOPIC;
  if (resource == "group") return RD_KAFKA_RESOURCE_GROUP;
  return RD_KAFKA_RESOURCE_UNKNOWN;
}

rd_kafka_AclOperation_t Operation(const std::string& operation) {
  if (operation == "Read") return RD_KAFKA_ACL_OPERATION_READ;
  if (operation == "Write") return RD_KAFKA_ACL_OPERATION_WRITE;
  if (operation == "Describe") return RD_KAFKA_ACL_OPERATION_DESCRIBE;
  if (operation == "Create") return RD_KAFKA_ACL_OPERATION_CREATE;
  return RD_KAFKA_ACL_OPERATION_UNKNOWN;
}

std::string OperationName(rd_kafka_AclOperation_t operation) {
  switch (operation) {
    case RD_KAFKA_ACL_OPERATION_READ:
      return "Read";
    case RD_KAFKA_ACL_OPERATION_WRITE:
      return "Write";
    case RD_KAFKA_ACL_OPERATION_DESCRIBE:
      return "Describe";
    case RD_KAFKA_ACL_OPERATION_CREATE:
      return "Create";
    default:
      return rd_kafka_AclOperation_name(operation);
  }
}

// What an admin call's answer says went wrong, if anything.
absl::Status AdminError(rd_kafka_event_t* event, const std::string& what) {
  const rd_kafka_resp_err_t err = rd_kafka_event_error(event);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  const std::string message =
      absl::StrCat("kafka admin: ", what, ": ", rd_kafka_event_error_string(event));
  if (err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

using Event = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// Sends one admin request (`send` queues it, with the options and the queue it is given) and waits
// for the answer: UNAVAILABLE when none comes within `timeout` (plus a second), the request's own
// error (AdminError, `what`), or the answering event.
absl::StatusOr<Event> AdminCall(
    rd_kafka_t* rk, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout,
    const std::string& what,
    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& send) {
  char error[512];
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk, op));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()), error,
                                            sizeof error);
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk));
  send(options.get(), queue.get());
  Event event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
  if (!event) return absl::UnavailableError("kafka admin: no answer from the broker in time");
  if (absl::Status s = AdminError(event.get(), what); !s.ok()) return s;
  return event;
}

// The librdkafka binding (or, with `filter`, the filter that matches exactly it) for `acl`.
absl::StatusOr<Binding> NewBinding(const AclBinding& acl, bool filter) {
  const rd_kafka_ResourceType_t type = ResourceType(acl.resource);
  const rd_kafka_AclOperation_t operation = Operation(acl.operation);
  if (type == RD_KAFKA_RESOURCE_UNKNOWN || operation == RD_KAFKA_ACL_OPERATION_UNKNOWN) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka acl: ", acl.operation, " on ", acl.resource, " is not supported"));
  }
  char error[512];
  const auto make = filter ? rd_kafka_AclBindingFilter_new : rd_kafka_AclBinding_new;
  Binding binding(
      make(type, acl.name.c_str(),
           acl.prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL,
           acl.principal.c_str(), "*", operation, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, error,
           sizeof error));
  if (!binding) {
    return absl::InvalidArgumentError(absl::StrCat("kafka acl for ", acl.principal, ": ", error));
  }
  return binding;
}

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
  std::vector<Binding> owned;
  std::vector<rd_kafka_AclBinding_t*> bindings;
  for (const AclBinding& acl : acls) {
    absl::StatusOr<Binding> binding = NewBinding(acl, /*filter=*/false);
    if (!binding.ok()) return binding.status();
    bindings.push_back(binding->get());
    owned.push_back(*std::move(binding));
  }
  absl::StatusOr<Event> event =
      AdminCall(rk->get(), RD_KAFKA_ADMIN_OP_CREATEACLS, timeout, "create acls",
                [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                  rd_kafka_CreateAcls(rk->get(), bindings.data(), bindings.size(), options, queue);
                });
  if (!event.ok()) return event.status();
  std::size_t count = 0;
  const rd_kafka_acl_result_t** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event->get()), &count);
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

absl::Status DeleteTopics(const std::string& bootstrap_servers,
                          const std::vector<std::string>& topics, std::chrono::milliseconds timeout,
                          const Properties& extra) {
  if (topics.empty()) return absl::OkStatus();
  absl::StatusOr<Handle> rk = NewAdminHandle(bootstrap_servers, extra);
  if (!rk.ok()) return rk.status();
  struct DeleteTopicDeleter {
    void operator()(rd_kafka_DeleteTopic_t* t) const { rd_kafka_DeleteTopic_destroy(t); }
  };
  std::vector<std::unique_ptr<rd_kafka_DeleteTopic_t, DeleteTopicDeleter>> owned;
  std::vector<rd_kafka_DeleteTopic_t*> deletes;
  for (const std::string& topic : topics) {
    owned.emplace_back(rd_kafka_DeleteTopic_new(topic.c_str()));
    deletes.push_back(owned.back().get());
  }
  absl::StatusOr<Event> event =
      AdminCall(rk->get(), RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout, "delete topics",
                [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                  rd_kafka_DeleteTopics(rk->get(), deletes.data(), deletes.size(), options, queue);
                });
  if (!event.ok()) return event.status();
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event->get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      continue;
    }
    const std::string message =
        absl::StrCat("kafka admin: delete topic ", rd_kafka_topic_result_name(results[i]), ": ",
                     rd_kafka_topic_result_error_string(results[i]));
    if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      return absl::PermissionDeniedError(message);
    }
    return absl::InternalError(message);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AclBinding>> DescribeAcls(const std::string& bootstrap_servers,
                                                     const std::string& principal,
                                                     std::chrono::milliseconds timeout) {
  absl::StatusOr<Handle> rk = NewAdminHandle(bootstrap_servers, {});
  if (!rk.ok()) return rk.status();
  char error[512];
  Binding filter(rd_kafka_AclBindingFilter_new(
      RD_KAFKA_RESOURCE_ANY, nullptr, RD_KAFKA_RESOURCE_PATTERN_ANY, principal.c_str(), nullptr,
      RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, error, sizeof error));
  if (!filter) return absl::InvalidArgumentError(absl::StrCat("kafka acl filter: ", error));
  absl::StatusOr<Event> event =
      AdminCall(rk->get(), RD_KAFKA_ADMIN_OP_DESCRIBEACLS, timeout, "describe acls",
                [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                  rd_kafka_DescribeAcls(rk->get(), filter.get(), options, queue);
                });
  if (!event.ok()) return event.status();
  std::size_t count = 0;
  const rd_kafka_AclBinding_t** found =
      rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(event->get()), &count);
  std::vector<AclBinding> acls;
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_ResourceType_t type = rd_kafka_AclBinding_restype(found[i]);
    if ((type != RD_KAFKA_RESOURCE_TOPIC && type != RD_KAFKA_RESOURCE_GROUP) ||
        rd_kafka_AclBinding_permission_type(found[i]) != RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW) {
      continue;
    }
    acls.push_back(
        {rd_kafka_AclBinding_principal(found[i]),
         type == RD_KAFKA_RESOURCE_TOPIC ? "topic" : "group", rd_kafka_AclBinding_name(found[i]),
         rd_kafka_AclBinding_resource_pattern_type(found[i]) == RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
         OperationName(rd_kafka_AclBinding_operation(found[i]))});
  }
  return acls;
}

absl::Status DeleteAcls(const std::string& bootstrap_servers, const std::vector<AclBinding>& acls,
                        std::chrono::milliseconds timeout) {
  if (acls.empty()) return absl::OkStatus();
  absl::StatusOr<Handle> rk = NewAdminHandle(bootstrap_servers, {});
  if (!rk.ok()) return rk.status();
  std::vector<Binding> owned;
  std::vector<rd_kafka_AclBindingFilter_t*> filters;
  for (const AclBinding& acl : acls) {
    absl::StatusOr<Binding> filter = NewBinding(acl, /*filter=*/true);
    if (!filter.ok()) return filter.status();
    filters.push_back(filter->get());
    owned.push_back(*std::move(filter));
  }
  absl::StatusOr<Event> event =
      AdminCall(rk->get(), RD_KAFKA_ADMIN_OP_DELETEACLS, timeout, "delete acls",
                [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                  rd_kafka_DeleteAcls(rk->get(), filters.data(), filters.size(), options, queue);
                });
  if (!event.ok()) return event.status();
  std::size_t count = 0;
  const rd_kafka_DeleteAcls_result_response_t** responses =
      rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(event->get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_error_t* err = rd_kafka_DeleteAcls_result_response_error(responses[i]);
    if (err == nullptr || rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    return absl::InternalError(absl::StrCat("kafka admin: delete acl ",
                                            i < acls.size() ? acls[i].name : "", ": ",
                                            rd_kafka_error_string(err)));
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
