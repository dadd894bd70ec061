// The regional Function App: Flex Consumption on Linux, running the Go custom handler (runtime custom
// 1.0), deployed by one deploy from a blob container it reads with its managed identity.
@allowed([
  'northeurope'
  'westeurope'
])
param location string
param planName string
param appName string
param identityId string
param identityClientId string
param hostStorageName string
param deploymentContainerName string
param appInsightsName string
param subnetId string
param workspaceId string
param tags object

@description('Always-ready instances for the HTTP functions, so the Graph webhook answers within 3 s.')
param alwaysReadyHttpInstances int

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Settings the handler reads; see the appSettings variable below.')
param settings object

@description('Custom domain bound to the app (empty: none).')
param customDomain string

@description('Key Vault holding the custom-domain certificate.')
param keyVaultId string
param certificateSecretName string

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The public base URL Graph calls back (notification, lifecycle, sign-in and consent redirects). With a
// custom domain it is that domain, so callbacks fail over with Traffic Manager; without one it is the
// app's classic host name (the site's own defaultHostName cannot feed its settings: it is an output of
// the same resource). Register <base>/api/auth/callback and <base>/api/onboarding/consent as redirect
// URIs of the Entra application.
var publicBaseUrl = empty(customDomain) ? 'https://${appName}.azurewebsites.net' : 'https://${customDomain}'

// Every app setting, in one place. Identity-based connections only: no key, SAS or connection string
// with a secret. FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and WEBSITE_RUN_FROM_PACKAGE
// must not appear: Flex Consumption takes them from functionAppConfig and rejects them here.
var appSettings = {
  AzureWebJobsStorage__accountName: hostStorage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId

  ServiceBusConnection__fullyQualifiedNamespace: settings.serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId

  // The connection string carries only the instrumentation key, which is an identifier, not a secret;
  // ingestion is authenticated with the identity because local auth is off on the component.
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'

  CONNECTHUB_ENVIRONMENT: 'azure'
  CONNECTHUB_REGION: location
  CONNECTHUB_APP_ID: settings.entraAppId
  CONNECTHUB_OPERATOR_TENANT_ID: settings.operatorTenantId
  CONNECTHUB_VERSION: settings.version
  CONNECTHUB_INVOCATION_TIMEOUT: '${settings.handlerDeadlineSeconds}s'
  CONNECTHUB_NOTIFICATION_CERT_NAMES: join(settings.notificationCertNames, ',')
  CONNECTHUB_TABLES_ACCOUNT_URL: settings.tablesAccountUrl
  CONNECTHUB_KEYVAULT_URL: settings.keyVaultUrl
  CONNECTHUB_MANAGED_IDENTITY_CLIENT_ID: identityClientId
  CONNECTHUB_PUBLIC_BASE_URL: publicBaseUrl
  CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI: '${publicBaseUrl}/api/onboarding/consent'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // HTTP functions scale as one group, so "http" keeps the webhook warm.
        alwaysReady: [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ]
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }

  // Deployments use Entra ID tokens (az login); basic publishing credentials stay off.
  resource ftpCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  resource scmCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

resource certificate 'Microsoft.Web/certificates@2024-04-01' = if (!empty(customDomain)) {
  name: '${appName}-${replace(customDomain, '.', '-')}'
  location: location
  tags: tags
  properties: {
    serverFarmId: plan.id
    keyVaultId: keyVaultId
    keyVaultSecretName: certificateSecretName
  }
}

resource hostNameBinding 'Microsoft.Web/sites/hostNameBindings@2024-04-01' = if (!empty(customDomain)) {
  parent: app
  name: empty(customDomain) ? 'unused' : customDomain
  properties: {
    siteName: app.name
    hostNameType: 'Verified'
    sslState: 'SniEnabled'
    thumbprint: certificate.properties.thumbprint
  }
}

resource appDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: app
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
@description('Value of the TXT record asuid.<custom domain> that proves the domain to App Service.')
output customDomainVerificationId string = app.properties.customDomainVerificationId
