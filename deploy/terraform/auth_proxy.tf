# The emergency basic-auth proxy, for when the SSO in front of the page is
# itself down. Its htpasswd is a subPath mount, which does not update in a
# running pod: the checksum annotation on the pod template rolls the proxy
# whenever the emergency password changes.

resource "kubernetes_secret_v1" "emergency_htpasswd" {
  metadata {
    name      = "breakglass-emergency-htpasswd"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  data = { htpasswd = var.emergency_htpasswd }
}

resource "kubernetes_config_map_v1" "auth_proxy" {
  metadata {
    name      = "breakglass-auth-proxy"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  data = {
    "default.conf" = <<-EOT
      server {
        listen 8081;
        location / {
          auth_basic "breakglass (emergency)";
          auth_basic_user_file /etc/nginx/htpasswd;
          proxy_set_header ${var.proxy_header} $remote_user;
          proxy_buffering off;
          proxy_read_timeout 3600s;
          proxy_pass http://breakglass.${var.namespace}.svc;
        }
      }
    EOT
  }
}

resource "kubernetes_deployment_v1" "auth_proxy" {
  metadata {
    name      = "breakglass-auth-proxy"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  spec {
    replicas = 1
    selector {
      match_labels = { "app.kubernetes.io/name" = "breakglass", "app.kubernetes.io/component" = "auth-proxy" }
    }
    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/component" = "auth-proxy" })
        annotations = {
          "checksum/htpasswd" = sha256(var.emergency_htpasswd)
        }
      }
      spec {
        automount_service_account_token = false
        priority_class_name             = var.priority_class_name
        container {
          name  = "nginx"
          image = var.auth_proxy_image
          port {
            container_port = 8081
          }
          volume_mount {
            name       = "htpasswd"
            mount_path = "/etc/nginx/htpasswd"
            sub_path   = "htpasswd"
            read_only  = true
          }
          volume_mount {
            name       = "conf"
            mount_path = "/etc/nginx/conf.d"
            read_only  = true
          }
        }
        volume {
          name = "htpasswd"
          secret {
            secret_name = kubernetes_secret_v1.emergency_htpasswd.metadata[0].name
          }
        }
        volume {
          name = "conf"
          config_map {
            name = kubernetes_config_map_v1.auth_proxy.metadata[0].name
          }
        }
      }
    }
  }
}
