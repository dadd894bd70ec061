// Least-privilege roles for one region's identity on the shared data tier. Each regional deployment
// grants its own identity; the data tier itself is created only by the data home region.
param principalId string
param tablesAccountName string
param namespaceName string
@description('Geo-DR partner namespace, empty with geo-replication. Its queues exist only by replication, so the roles are granted on the namespace.')
param partnerNamespaceName string
param queueNames array
param keyVaultName string

@description('The app writes secrets (per-tenant data keys, refresh tokens): Secrets Officer; otherwise Secrets User.')
param keyVaultWrites bool

var roles = {
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}
var keyVaultRole = keyVaultWrites ? roles.keyVaultSecretsOfficer : roles.keyVaultSecretsUser

resource tables 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: tablesAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for queueName in queueNames: {
  parent: namespace
  name: queueName
}]

resource partner 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = if (!empty(partnerNamespaceName)) {
  name: partnerNamespaceName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(tables.id, principalId, roles.tableDataContributor)
  scope: tables
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The webhook sends to both queues and the workers receive from them; both run as this identity.
resource queueSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in queueNames: {
  name: guid(queues[i].id, principalId, roles.serviceBusDataSender)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource queueReceivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in queueNames: {
  name: guid(queues[i].id, principalId, roles.serviceBusDataReceiver)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource partnerSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(partnerNamespaceName)) {
  name: guid(partner.id, principalId, roles.serviceBusDataSender)
  scope: partner
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource partnerReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(partnerNamespaceName)) {
  name: guid(partner.id, principalId, roles.serviceBusDataReceiver)
  scope: partner
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
